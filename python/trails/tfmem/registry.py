"""The registry of TFMEMs: every metric object by name (:func:`get_metric`), and scoring by
name (:func:`score_archs`). Importing it imports torch; :mod:`trails.tfmem` re-exports it
lazily and describes the metrics' interface.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trails.errors import TrailsError
from trails.tfmem import METRIC_NAMES
from trails.tfmem.base import SharedWeightTfmem, Tfmem
from trails.tfmem.batch import ScoringInputs, TfmemBatch
from trails.tfmem.express_flow import ExpressFlow
from trails.tfmem.fisher import Fisher
from trails.tfmem.grad_norm import GradNorm
from trails.tfmem.grad_plain import GradPlain
from trails.tfmem.grasp import Grasp
from trails.tfmem.jacflow import JacFlow
from trails.tfmem.jacob_cov import JacobCov
from trails.tfmem.nas_wot import NasWot
from trails.tfmem.ntk_cond_num import NtkCondNum
from trails.tfmem.ntk_trace import NtkTrace
from trails.tfmem.ntk_trace_approx import NtkTraceApprox
from trails.tfmem.snip import Snip
from trails.tfmem.synflow import SynFlow
from trails.tfmem.vectorised import as_arch_array
from trails.tfmem.weight_norm import WeightNorm

__all__ = ["ScoringInputs", "TfmemBatch", "Tfmem", "get_metric", "metric_names", "score_archs"]

_METRICS: dict[str, Tfmem] = {
    metric.name: metric
    for metric in (
        ExpressFlow(), SynFlow(), Snip(), Grasp(), NasWot(), GradNorm(), GradPlain(), Fisher(),
        NtkTrace(), NtkTraceApprox(), NtkCondNum(), WeightNorm(), JacobCov(), JacFlow(),
    )
}


def metric_names() -> list[str]:
    """Names of all TFMEMs, sorted."""
    return sorted(_METRICS)


if tuple(metric_names()) != METRIC_NAMES:  # one list: trails.tfmem.METRIC_NAMES names them without torch
    raise ImportError(f"trails.tfmem.METRIC_NAMES {METRIC_NAMES} does not list the registry's TFMEMs "
                      f"{tuple(metric_names())}")


def get_metric(name: str) -> Tfmem:
    """The TFMEM called ``name``.

    Raises:
        TrailsError (a ValueError): "unknown TFMEM 'x'; valid: …" for any other name.
    """
    try:
        return _METRICS[name]
    except (KeyError, TypeError):
        raise TrailsError(f"unknown TFMEM {name!r}; valid: {', '.join(metric_names())}") from None


def score_archs(metric_name: str, archs: Sequence[Sequence[int]], in_features: int, seed: int = 0,
                batch: TfmemBatch | None = None, n_outputs: int = 2) -> np.ndarray:
    """Scores (float64, one per arch, same order) of ``archs`` under the TFMEM ``metric_name``.

    Data-agnostic TFMEMs need only ``in_features`` (SynFlow and ExpressFlow then run vectorised);
    data-dependent ones need ``batch``, whose ``in_features`` must equal ``in_features``.
    ``n_outputs`` is the output width of the data-agnostic TFMEMs' networks (the task's); the
    data-dependent ones score classifiers of ``batch``'s classes (for regression, the batch
    carries the target split at its median: :func:`trails.context.read_scoring_batch`).

    Raises:
        TrailsError (a ValueError): unknown metric; a data-dependent metric without a batch; a
        batch of another input width; ``in_features`` < 1.
    """
    metric = get_metric(metric_name)
    if int(in_features) < 1:
        raise TrailsError(f"in_features must be >= 1, got {in_features}")
    if isinstance(metric, SharedWeightTfmem):  # vectorised: one int64 array, no per-arch tuples
        return metric.score_features(as_arch_array(archs), int(in_features), seed, int(n_outputs))
    archs = [tuple(int(width) for width in arch) for arch in archs]
    if metric.data_agnostic:
        return metric.score_features(archs, int(in_features), seed, int(n_outputs))
    if batch is None:
        raise TrailsError(f"TFMEM {metric_name!r} is data-dependent: it needs a batch of rows",
                          hint="pass batch=, or use a data-agnostic TFMEM such as express_flow")
    if batch.in_features != int(in_features):
        raise TrailsError(f"the batch has {batch.in_features} input features ({batch.n_fields} fields × "
                          f"{batch.embedding_dim}), in_features is {in_features}")
    return metric.score_many(archs, batch, seed)
