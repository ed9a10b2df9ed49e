"""A trained gradient-boosted trees model: a LightGBM booster and its feature map.

:class:`GbdtModel` is what the gbdt family's ``evaluate``, ``predict``, ``to_bytes`` and
``export`` take; :class:`GbdtSnapshot` is an immutable copy of one (its model string), cheap to
keep for the best evaluation of a run.

**Bytes** (what ``trails.models.weights`` stores, :func:`model_to_bytes`): see
:mod:`trails.serving.tree_format`, which also reads them where models are served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm
import numpy as np

from trails.serving.tree_format import (FeatureMap, as_outputs, empty_model_outputs, feature_matrix,
                                        read_trees_bytes, trees_bytes)
from trails.serving.tree_masks import MaskedForest
from trails.task import Task

LEAF_COUNT_PREFIX = "num_leaves="
"""The line of a LightGBM model string that gives one tree's leaves."""

MASKS_MIN_ROWS = 20_000
"""Rows from which :func:`raw_predictions` builds the model's bit masks
(:mod:`trails.serving.tree_masks`) to predict them: about where building (~0.5 ms a tree here)
costs less than it saves (LightGBM ~30 ns a row and tree on 2 threads, the masks ~8 on one).
Measured here on a warm start's forest of 1,420 trees and frappe's 28,860 test rows: LightGBM
3.4 s, the masks 0.34 s after a 0.8 s build."""


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
    _masked: tuple | None = field(default=None, repr=False, compare=False)  # ((rounds, num_iteration), masks)

    def masked(self) -> MaskedForest | None:
        """The model's bit masks, built at the first call and again once its booster has
        trained on (boosters here only grow) or :attr:`iterations` changed; None where they
        cannot express it, or for no trees."""
        if self.booster is None:
            return None
        key = (self.booster.current_iteration(), self.num_iteration)
        if self._masked is None or self._masked[0] != key:
            text = self.booster.model_to_string(num_iteration=self.num_iteration)
            self._masked = (key, MaskedForest.build(self.booster, text, self.feature_map.n_fields,
                                                    self.num_iteration))
        return self._masked[1]

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
        return trees_bytes(self.model_string, self.feature_map)


def model_to_bytes(model: GbdtModel) -> bytes:
    """``model`` as bytes (see the module docstring)."""
    return model.snapshot().to_bytes()


def snapshot_from_bytes(data: bytes) -> GbdtSnapshot:
    """The snapshot :func:`model_to_bytes` wrote as ``data``.

    Raises:
        TrailsError: when ``data`` is not a trails gbdt model, or one of a later format version.
    """
    return GbdtSnapshot(*read_trees_bytes(data))


def tree_nodes(model_string: str) -> int:
    """Nodes of every tree of a LightGBM model string: splits + leaves, ``2·leaves − 1`` per tree."""
    leaves = [int(line[len(LEAF_COUNT_PREFIX):]) for line in model_string.splitlines()
              if line.startswith(LEAF_COUNT_PREFIX)]
    return sum(2 * count - 1 for count in leaves)


def raw_predictions(model: GbdtModel, ids, values, num_threads: int | None = None) -> np.ndarray:
    """The booster's prediction for encoded rows (LightGBM's transformed output): P(positive)
    ``[N]`` for ``binary``, class probabilities ``[N, C]`` for ``multiclass``, the standardised
    target ``[N]`` for ``regression``; float64. From :data:`MASKS_MIN_ROWS` rows on, through the
    model's bit masks (:meth:`GbdtModel.masked`) where they express it."""
    if num_threads is None:
        import torch  # the trainer's thread count (a trained model predicts beside it)

        num_threads = torch.get_num_threads()
    threads = int(num_threads)
    matrix = feature_matrix(ids, values, model.feature_map)
    if len(matrix) == 0:
        return np.empty((0,), dtype=np.float64)
    masked = model.masked() if len(matrix) >= MASKS_MIN_ROWS else None
    if masked is not None:
        return masked.predict(matrix)
    return np.asarray(model.booster.predict(matrix, num_iteration=model.num_iteration, num_threads=threads),
                      dtype=np.float64)


def predict_outputs(model: GbdtModel, task: Task, ids, values) -> np.ndarray:
    """What ``model`` predicts for encoded rows in the format :meth:`trails.task.Task.outputs`
    gives an MLP's logits: class probabilities float64 ``[N, C]`` (binary: ``[1 − p, p]``), or
    the prediction in the label's units float64 ``[N]`` for regression (``mean + std · y``)."""
    if model.booster is None:
        return empty_model_outputs(task, len(ids))
    return as_outputs(raw_predictions(model, ids, values), task)


def evaluate(model: GbdtModel, data, task: Task) -> float:
    """``task.metric`` of ``model`` over every row of the split ``data`` (outputs of
    :func:`predict_outputs`, as an MLP's are scored; the model's ``known`` predictions when
    ``data`` is their split: a large trees model predicts slowly).

    Raises:
        TrailsError: when the metric is undefined on the split (e.g. ROC-AUC of one class).
    """
    labels = data.labels.detach().cpu().numpy()
    if model.booster is not None and model.known is not None and model.known[0] is data:
        return task.score(labels, as_outputs(model.known[1], task))
    return task.score(labels, predict_outputs(model, task, data.ids, data.values))
