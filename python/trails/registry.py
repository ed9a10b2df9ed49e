"""Runs and models: ``trails.runs`` and ``trails.models``.

A run and its model are written together at the end of ``model_selection``, in one
subtransaction: a call that fails or is cancelled leaves neither behind. A stored model is
rebuilt by its family (:mod:`trails.families`), named in its ``hyper`` (``"mlp"`` when absent,
as on every row written before families existed); ``arch`` holds its candidate's text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from trails.data.layout import Layout
from trails.data.session import Session
from trails.errors import TrailsError
from trails.families import Candidate, ModelFamily, ModelHyper, get_family, parse_candidate
from trails.serving.stored import read_stored
from trails.task import Task

__all__ = ["ModelHyper", "StoredModel", "insert_model", "load_model", "store_run_and_model"]


@dataclass
class StoredModel:
    """A model as stored.

    Attributes:
        model_id, dataset: its row's.
        arch: its candidate's text (``trails.models.arch``; for an MLP, the arch).
        layout: how its rows are encoded.
        hyper: what it was built and trained with.
        candidate: its family and configuration.
        fitted: the family's model, ready to predict (eval mode, CPU, for an MLP).
        task: the layout's task, with the metric that selected the model.
        params: its parameter count.
    """

    model_id: int
    dataset: str
    arch: str
    layout: Layout
    hyper: ModelHyper
    candidate: Candidate
    fitted: object
    task: Task
    params: int

    @property
    def family(self) -> ModelFamily:
        """The family that built :attr:`fitted` (predict and export go through it)."""
        return get_family(self.candidate.family)

    def predict(self, ids, values) -> np.ndarray:
        """What the model predicts for encoded rows (``ids`` int64 ``(N, F)``, ``values``
        float32 ``(N, F)``), as its task reads it (:meth:`trails.task.Task.outputs`)."""
        return self.family.predict(self.fitted, self.task, ids, values)


def store_run_and_model(session: Session, run: dict, model: dict) -> tuple[int, int]:
    """Insert the run and its model atomically; returns (run_id, model_id).

    ``run``: the ``trails.runs`` columns but run_id/finished_at (``phases`` a dict;
    ``warm_start`` a dict, or absent or None for a cold start);
    ``model``: the ``trails.models`` columns but model_id/run_id/dataset/layout_id/created_at
    (``hyper`` a :class:`ModelHyper` or its JSON dict, ``weights`` bytes).
    """
    run_columns = ["dataset", "label", "layout_id", "budget_s", "tfmem", "refinement", "n_scored",
                   "k_refined", "u", "t1", "t2", "phases", "best_arch", "task", "metric", "valid_score",
                   "test_score", "valid_auc", "test_auc", "elapsed_s", "seed", "started_at", "families", "family",
                   "family_scores", "warm_start"]
    run_types = ["text", "text", "bigint", "float8", "text", "text", "int", "int", "int", "float8",
                 "float8", "jsonb", "text", "text", "text", "float8", "float8", "float8", "float8",
                 "float8", "int", "timestamptz", "text", "text", "jsonb", "jsonb"]
    values = [run.get("warm_start") and json.dumps(run["warm_start"]) if c == "warm_start"
              else json.dumps(run[c]) if c in ("phases", "family_scores") else run[c] for c in run_columns]
    placeholders = ", ".join(f"${i}" for i in range(1, len(run_columns) + 1))
    with session.atomic():
        run_id = session.query(
            f"INSERT INTO trails.runs ({', '.join(run_columns)}) VALUES ({placeholders})"
            " RETURNING run_id", values, run_types)[0]["run_id"]
        model_id = insert_model(session, dict(model, run_id=run_id, dataset=run["dataset"],
                                              layout_id=run["layout_id"]))
    return run_id, model_id


def insert_model(session: Session, model: dict) -> int:
    """Insert one ``trails.models`` row (``model``: its columns but model_id/created_at,
    ``hyper`` a :class:`ModelHyper` or its JSON dict, ``weights`` bytes; ``run_id`` and
    ``refit_of`` may be absent); returns its model_id."""
    columns = ["run_id", "dataset", "layout_id", "arch", "hyper", "weights", "task", "metric", "params",
               "valid_score", "test_score", "valid_auc", "test_auc", "refit_of"]
    types = ["bigint", "text", "bigint", "text", "jsonb", "bytea", "text", "text", "bigint", "float8",
             "float8", "float8", "float8", "bigint"]
    values = [json.dumps(_hyper_json(model["hyper"])) if c == "hyper" else model.get(c) for c in columns]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return session.query(f"INSERT INTO trails.models ({', '.join(columns)}) VALUES ({placeholders})"
                         " RETURNING model_id", values, types)[0]["model_id"]


def load_model(session: Session, model_id) -> StoredModel:
    """The stored model ``model_id``, built by its family; :class:`TrailsError` when there is
    none (:func:`~trails.serving.stored.read_stored`)."""
    row = read_stored(session, model_id)
    hyper = ModelHyper.from_json(row.hyper)
    candidate = stored_candidate(row.arch, hyper.family)
    fitted = get_family(candidate.family).from_bytes(candidate.config, hyper, row.task.n_outputs, row.weights)
    return StoredModel(row.model_id, row.dataset, row.arch, row.layout, hyper, candidate, fitted, row.task,
                       row.params)


def stored_candidate(arch: str, family: str) -> Candidate:
    """The candidate of a stored model: its ``arch`` text read as a candidate of ``family``
    (the text of an MLP has no family prefix; another family's has its own).

    Raises:
        TrailsError: when the text names another family than ``hyper`` does.
    """
    candidate = parse_candidate(arch)
    if candidate.family != family:
        raise TrailsError(f"stored model {arch!r} is of family {candidate.family!r} but its hyper says {family!r}")
    return candidate


def _hyper_json(hyper: ModelHyper | dict) -> dict:
    """``hyper`` as the JSON object ``trails.models.hyper`` stores: a dict is read as
    :meth:`ModelHyper.from_json` does, so that every stored model names its family."""
    return (hyper if isinstance(hyper, ModelHyper) else ModelHyper.from_json(hyper)).to_json()
