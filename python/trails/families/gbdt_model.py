"""A trained gradient-boosted trees model: a LightGBM booster and its feature map.

:class:`GbdtModel` is what the gbdt family's ``evaluate``, ``predict``, ``to_bytes`` and
``export`` take; :class:`GbdtSnapshot` is an immutable copy of one (its model string), cheap to
keep for the best evaluation of a run.

**Bytes** (what ``trails.models.weights`` stores, :func:`model_to_bytes`): UTF-8 text, one JSON
header line, then LightGBM's model string (``Booster.model_to_string``)::

    {"format": "trails-gbdt", "version": 1, "feature_map": {"n_ids": 5382, "numeric": [false, true]}}
    tree
    version=v4
    ...

A later version of the format raises a clear error here instead of predicting wrongly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import lightgbm
import numpy as np
import torch

from trails.errors import TrailsError
from trails.families.gbdt_features import FeatureMap, feature_matrix
from trails.task import Task

BYTES_FORMAT = "trails-gbdt"
BYTES_VERSION = 1
"""The version of :func:`model_to_bytes`' format this code writes and reads."""

HEADER_END = b"\n"
LEAF_COUNT_PREFIX = "num_leaves="
"""The line of a LightGBM model string that gives one tree's leaves."""


@dataclass
class GbdtModel:
    """A booster and how its rows are read.

    Attributes:
        booster: a ``lightgbm.Booster``; every tree it holds is the model (a training booster
            of a :class:`~trails.families.gbdt_training.GbdtTrainable`, or one loaded from a
            model string); None for a model of no trees (a candidate before its first round),
            which predicts what an empty booster does: P = 0.5, uniform classes, the mean.
        feature_map: how rows become its features (:mod:`trails.families.gbdt_features`).
        iterations: the model is the booster's first ``iterations`` rounds (a training booster
            that went on past its best round); None: all of them.
        known: ``(split, predictions)``: what this model predicts for the rows of that split
            object (as :func:`raw_predictions` gives them), computed by LightGBM while it
            boosted (the watched decision sample); :func:`evaluate` of that very split uses
            them instead of predicting again. None: nothing known.
    """

    booster: lightgbm.Booster | None
    feature_map: FeatureMap
    iterations: int | None = None
    known: tuple | None = None

    @property
    def num_iteration(self) -> int:
        """LightGBM's ``num_iteration`` argument for this model (−1: every round)."""
        return -1 if self.iterations is None else int(self.iterations)

    def snapshot(self) -> "GbdtSnapshot":
        """An immutable copy of the model as it is now (only its first ``iterations`` rounds)."""
        text = "" if self.booster is None else self.booster.model_to_string(num_iteration=self.num_iteration)
        return GbdtSnapshot(text, self.feature_map)


@dataclass(frozen=True)
class GbdtSnapshot:
    """A model frozen: its LightGBM model string (empty: no trees) and its feature map
    (immutable, picklable)."""

    model_string: str
    feature_map: FeatureMap

    def model(self) -> GbdtModel:
        """A model that predicts as the snapshotted one did."""
        booster = lightgbm.Booster(model_str=self.model_string) if self.model_string else None
        return GbdtModel(booster, self.feature_map)

    def to_bytes(self) -> bytes:
        """:func:`model_to_bytes` of :meth:`model`, without loading the booster."""
        header = {"format": BYTES_FORMAT, "version": BYTES_VERSION, "feature_map": self.feature_map.to_json()}
        return json.dumps(header).encode() + HEADER_END + self.model_string.encode()


def model_to_bytes(model: GbdtModel) -> bytes:
    """``model`` as bytes (see the module docstring)."""
    return model.snapshot().to_bytes()


def snapshot_from_bytes(data: bytes) -> GbdtSnapshot:
    """The snapshot :func:`model_to_bytes` wrote as ``data``.

    Raises:
        TrailsError: when ``data`` is not a trails gbdt model, or one of a later format version.
    """
    header_text, separator, model_string = bytes(data).partition(HEADER_END)
    try:
        header = json.loads(header_text)
        valid = separator and header.get("format") == BYTES_FORMAT
    except (ValueError, AttributeError):
        valid = False
    if not valid:
        raise TrailsError("the stored weights are not a gradient-boosted trees model",
                          hint="the model's family and its weights disagree; store the model again")
    if int(header.get("version", 0)) > BYTES_VERSION:
        raise TrailsError(f"the stored trees model has format version {header['version']}, this trails reads "
                          f"up to {BYTES_VERSION}", hint="upgrade the trails package")
    return GbdtSnapshot(model_string.decode(), FeatureMap.from_json(header["feature_map"]))


def tree_nodes(model_string: str) -> int:
    """Nodes of every tree of a LightGBM model string: splits + leaves, ``2·leaves − 1`` per tree."""
    leaves = [int(line[len(LEAF_COUNT_PREFIX):]) for line in model_string.splitlines()
              if line.startswith(LEAF_COUNT_PREFIX)]
    return sum(2 * count - 1 for count in leaves)


def raw_predictions(model: GbdtModel, ids, values, num_threads: int | None = None) -> np.ndarray:
    """The booster's prediction for encoded rows (LightGBM's transformed output): P(positive)
    ``[N]`` for ``binary``, class probabilities ``[N, C]`` for ``multiclass``, the standardised
    target ``[N]`` for ``regression``; float64."""
    threads = int(num_threads or torch.get_num_threads())
    matrix = feature_matrix(ids, values, model.feature_map)
    if len(matrix) == 0:
        return np.empty((0,), dtype=np.float64)
    return np.asarray(model.booster.predict(matrix, num_iteration=model.num_iteration, num_threads=threads),
                      dtype=np.float64)


def predict_outputs(model: GbdtModel, task: Task, ids, values) -> np.ndarray:
    """What ``model`` predicts for encoded rows in the format :meth:`trails.task.Task.outputs`
    gives an MLP's logits: class probabilities float64 ``[N, C]`` (binary: ``[1 − p, p]``), or
    the prediction in the label's units float64 ``[N]`` for regression (``mean + std · y``)."""
    if model.booster is None:
        return _empty_model_outputs(task, len(ids))
    return _as_outputs(raw_predictions(model, ids, values), task)


def _as_outputs(predictions: np.ndarray, task: Task) -> np.ndarray:
    """:func:`raw_predictions`' values in the format of :func:`predict_outputs`."""
    if task.kind == "regression":
        return predictions * task.std + task.mean
    if task.kind == "binary":
        return np.column_stack([1.0 - predictions, predictions])
    return predictions.reshape(-1, task.n_outputs)


def _empty_model_outputs(task: Task, n_rows: int) -> np.ndarray:
    """What a booster of no trees predicts for ``n_rows`` rows, as :func:`predict_outputs`."""
    if task.kind == "regression":
        return np.full(n_rows, float(task.mean))
    return np.full((n_rows, task.n_outputs), 1.0 / task.n_outputs)


def evaluate(model: GbdtModel, data, task: Task) -> float:
    """``task.metric`` of ``model`` over every row of the split ``data`` (outputs of
    :func:`predict_outputs`, as an MLP's are scored; the model's ``known`` predictions when
    ``data`` is their split: a large trees model predicts slowly).

    Raises:
        TrailsError: when the metric is undefined on the split (e.g. ROC-AUC of one class).
    """
    labels = data.labels.detach().cpu().numpy()
    if model.booster is not None and model.known is not None and model.known[0] is data:
        return task.score(labels, _as_outputs(model.known[1], task))
    return task.score(labels, predict_outputs(model, task, data.ids, data.values))
