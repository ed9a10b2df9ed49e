"""The TFMEM score cache: scores of archs kept in ``trails.tfmem_scores`` for warm starts.

The contract. A TFMEM score is a deterministic function of (arch, TFMEM, seed, the MLP's input
and output widths and, for a data-dependent TFMEM, the batch of rows) — see
:mod:`trails.tfmem.base` — computed by the installed torch and numpy. :func:`signature` hashes
all of these (and the search space, which decides which archs a search can propose) into one
key; a row of the table holds every finite score ever computed under that key, as parallel
arrays ``archs`` (text form, :func:`trails.space.arch_text`) and ``scores``. A score read back
under the same signature is the float64 a cold run computed, bit for bit, so filtering with
these scores as ``known`` (:func:`trails.filtering.filter_archs`) makes the same choices and
the same ranking as that run. (A vectorised TFMEM's score may move in its last bits, ~1e-12
relative, with the other archs of the same call; runs that group archs otherwise already agree
only to that precision.)

Bump :data:`CACHE_VERSION` whenever a TFMEM's scores change for the same inputs: every old row
then stops matching.

torch is imported only by :func:`signature` (the filtering phase has it loaded already).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from trails.data.session import Session
from trails.errors import TrailsError
from trails.space import Arch, SearchSpace, arch_text, parse_arch

CACHE_VERSION = 1

_LOAD = "SELECT archs, scores FROM trails.tfmem_scores WHERE signature = $1"
_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('trails.tfmem_scores:' || $1)) AS locked"
SKIPPED_SQLSTATES = ("40001", "55P03")  # serialization failure, lock not available: another call's write
_SAVE = ("INSERT INTO trails.tfmem_scores (signature, tfmem, seed, archs, scores) "
         "VALUES ($1, $2, $3, $4::text[], $5::float8[]) "
         "ON CONFLICT (signature) DO UPDATE SET archs = EXCLUDED.archs, scores = EXCLUDED.scores, "
         "updated_at = clock_timestamp()")


def signature(tfmem: str, seed: int, space: SearchSpace, inputs) -> str:
    """The cache key of scores computed with ``tfmem`` and ``seed`` over ``space`` on ``inputs``.

    Args:
        tfmem: a TFMEM name (:func:`trails.tfmem.metric_names`).
        seed: the TFMEM's seed, ≥ 0.
        space: the search space (its ``layers`` and ``widths`` enter the key).
        inputs: the :class:`~trails.tfmem.ScoringInputs` (``in_features``, ``n_outputs`` and,
            for a data-dependent TFMEM only, a digest of ``batch``).

    Returns:
        32 hex characters: the head of a sha256 over the JSON of all of the above,
        :data:`CACHE_VERSION` and the torch and numpy versions.

    Raises:
        TrailsError: for an unknown TFMEM, or a data-dependent one without a batch.
    """
    import torch

    from trails.tfmem import get_metric

    key = {"version": CACHE_VERSION, "tfmem": tfmem, "seed": int(seed),
           "layers": space.layers, "widths": list(space.widths),
           "in_features": int(inputs.in_features), "n_outputs": int(inputs.n_outputs),
           "torch": str(torch.__version__), "numpy": np.__version__}
    if not get_metric(tfmem).data_agnostic:
        if inputs.batch is None:
            raise TrailsError(f"TFMEM {tfmem!r} is data-dependent: its scores depend on a batch of rows, "
                              "and the scoring inputs have none")
        key["batch"] = batch_digest(inputs.batch)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def batch_digest(batch) -> str:
    """sha256 hex of a :class:`~trails.tfmem.TfmemBatch`: the dtype, shape and bytes of ``ids``
    (B, F), ``values`` (B, F) and ``labels`` (B,), then ``n_ids`` and ``embedding_dim``."""
    digest = hashlib.sha256()
    for tensor in (batch.ids, batch.values, batch.labels):
        array = tensor.detach().cpu().numpy()
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(f"n_ids={getattr(batch, 'n_ids', None)} embedding_dim={batch.embedding_dim}".encode())
    return digest.hexdigest()


def load(session: Session, sig: str) -> dict[Arch, float]:
    """The scores stored under ``sig``: ``{arch: score}`` (archs as int tuples, scores finite
    floats), ``{}`` when there is no row.

    A corrupt row (arrays of different lengths, an arch that does not parse) reads as ``{}``:
    the scores are computed again.
    """
    rows = session.query(_LOAD, [sig], ["text"])
    if not rows:
        return {}
    archs, scores = rows[0]["archs"], rows[0]["scores"]
    try:
        return {parse_arch(text, bounded=False): float(score) for text, score in zip(archs, scores, strict=True)}
    except (TrailsError, ValueError, TypeError):
        return {}


def save(session: Session, sig: str, tfmem: str, seed: int, scores: dict[Arch, float]) -> bool:
    """Store ``scores`` (``{arch: score}``, the cached ones merged with the new ones) under
    ``sig``, replacing the row's arrays, in one atomic step; returns whether it was stored.

    Scores that are not finite (−inf: archs ``max_params`` rejected, never scored) are left out;
    with none left nothing is written. A cache must never make a call wait: the write is
    skipped (False) when another transaction is writing the same signature (its advisory lock
    is held until that transaction ends) or when the row changed under this transaction's
    snapshot (a serialization failure) — that call's scores stand.
    """
    kept = [(arch, float(score)) for arch, score in scores.items() if math.isfinite(score)]
    if not kept:
        return False
    archs = [arch_text(arch) for arch, _ in kept]
    values = [score for _, score in kept]
    try:
        with session.atomic():
            if not session.query(_LOCK, [sig], ["text"])[0]["locked"]:
                return False
            session.query(_SAVE, [sig, tfmem, int(seed), archs, values],
                          ["text", "text", "int4", "text[]", "float8[]"])
    except Exception as error:  # noqa: BLE001 — only another writer's conflict is skipped
        if _sqlstate(error) in SKIPPED_SQLSTATES:
            return False
        raise
    return True


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a failed query (PL/Python's ``SPIError.sqlstate``, psycopg2's ``pgcode``)."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
