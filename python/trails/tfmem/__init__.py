"""Training-free model evaluation metrics (TFMEMs): one module per metric, and a registry.

>>> from trails.tfmem import get_metric, score_archs
>>> scores = score_archs("express_flow", [(8, 16, 32, 64), (512, 512, 512, 512)], in_features=100, seed=0)

Every metric object has ``name``, ``data_agnostic``, ``score(arch, batch, seed) -> float`` and
``score_many(archs, batch, seed) -> np.ndarray``; higher is better for all (see
:mod:`trails.tfmem.base`). SynFlow and ExpressFlow are vectorised over many archs
(:mod:`trails.tfmem.vectorised`).

The names are known without importing torch (:data:`METRIC_NAMES`, :func:`metric_names`), so
that a call's arguments are checked before the seconds torch takes to import in a fresh
backend; the metric objects (:mod:`trails.tfmem.registry`) are imported on first use of any
other name of this package.
"""

from __future__ import annotations

import importlib

# every TFMEM of the registry, sorted (trails.tfmem.registry refuses to load when they differ)
METRIC_NAMES = ("express_flow", "fisher", "grad_norm", "grad_plain", "grasp", "jacflow", "jacob_cov",
                "nas_wot", "ntk_cond_num", "ntk_trace", "ntk_trace_approx", "snip", "synflow", "weight_norm")

__all__ = ["METRIC_NAMES", "ScoringInputs", "TfmemBatch", "Tfmem", "get_metric", "metric_names", "score_archs"]
_FROM_REGISTRY = ("ScoringInputs", "TfmemBatch", "Tfmem", "get_metric", "score_archs")


def metric_names() -> list[str]:
    """Names of all TFMEMs, sorted (no torch needed)."""
    return list(METRIC_NAMES)


def __getattr__(name: str):
    """The registry's names (PEP 562): importing them imports torch."""
    if name in _FROM_REGISTRY:
        return getattr(importlib.import_module("trails.tfmem.registry"), name)
    raise AttributeError(f"module 'trails.tfmem' has no attribute {name!r}")
