"""A stored trees model's predictions: LightGBM's, for many rows or for one.

Once a backend has scored :data:`MASKS_AFTER_ROWS` rows with a model, the forest is rebuilt as
bit masks (:mod:`.tree_masks`: ~0.2 s for frappe's 365 trees, checked against the booster as it
is built), which answer a row in about a third of LightGBM's time here, one row or many. Before
that, and for a model the masks cannot express: many rows go through ``Booster.predict``, one
row through LightGBM's single-row prediction (``LGBM_BoosterPredictForMatSingleRowFast`` of its
C API, prepared once per model: the same trees and arithmetic as ``Booster.predict`` without its
per-call setup, ~120 µs a row here against ~20).
"""

from __future__ import annotations

import ctypes
from array import array

import lightgbm
import numpy as np

from trails.serving.tree_format import FeatureMap, as_outputs, empty_model_outputs, feature_matrix
from trails.serving.tree_masks import MaskedForest

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: the objective's transformed output
_DTYPE_FLOAT32 = 0  # C_API_DTYPE_FLOAT32

MASKS_AFTER_ROWS = 2048
"""Rows a backend scores with a model (one at a time or in batches) before it builds the
model's masks: a query of a few rows does not pay for the build, a scan of a table soon gains
from it."""


def lightgbm_library(symbol: str):
    """LightGBM's loaded C library (``lightgbm.basic._LIB``) when it exposes ``symbol``, else None."""
    library = getattr(getattr(lightgbm, "basic", None), "_LIB", None)
    return library if library is not None and hasattr(library, symbol) else None


def _c_api():
    """The library for single-row predictions (see :func:`lightgbm_library`)."""
    return lightgbm_library("LGBM_BoosterPredictForMatSingleRowFast")


class TreesForward:
    """A booster (None: a model of no trees), its feature map and task.

    Args:
        model_string: LightGBM's model string ('' for no trees).
        feature_map: how rows become features (:mod:`.tree_format`).
        task: the model's :class:`~trails.task.Task`.
    """

    def __init__(self, model_string: str, feature_map: FeatureMap, task):
        self.booster = lightgbm.Booster(model_str=model_string) if model_string else None
        self.model_string, self.feature_map, self.task = model_string, feature_map, task
        self.features = np.zeros(feature_map.n_fields, dtype=np.float32)  # one row's, refilled per row
        self._fast = None
        self.rows_scored = 0  # one at a time and in batches
        self.masked: MaskedForest | None | bool = None  # False: tried, cannot be built

    def outputs(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """What the model predicts for encoded rows (ids int64 ``(B, F)``, values float32
        ``(B, F)``), as :func:`~trails.serving.tree_format.as_outputs` gives it."""
        if self.booster is None:
            return empty_model_outputs(self.task, len(ids))
        if len(ids) == 0:
            return as_outputs(np.empty((0,), dtype=np.float64), self.task)
        features = feature_matrix(ids, values, self.feature_map)
        self._count(len(features))
        predictor = self.masked.predict if self.masked else self.booster.predict
        return as_outputs(np.asarray(predictor(features), dtype=np.float64), self.task)

    def row_features(self, ids: list, values: list) -> list:
        """One encoded row's features (:func:`~trails.serving.tree_format.feature_matrix` of
        one row) as floats, each rounded to float32 as the matrix holds it."""
        fmap, row = self.feature_map, []
        first_missing = fmap.first_missing_id
        for index, numeric in enumerate(fmap.numeric):
            identifier = ids[index]
            code = identifier - fmap.offsets[index]
            if identifier >= first_missing or code < 0:
                row.append(np.nan)
            else:
                row.append(values[index] if numeric else float(code))
        return array("f", row).tolist()

    def row_outputs(self, ids: list, values: list):
        """:meth:`outputs` of one encoded row (lists of ``F`` ids and values), as plain floats:
        a list of class probabilities (binary: ``[1 − p, p]``), or the regression value."""
        if self.booster is None:
            return empty_model_outputs(self.task, 1)[0].tolist()
        features = self.row_features(ids, values)
        raw = self.masked.row_predict(features) if self.masked else self._lightgbm_row(features)
        self._count(1)
        task = self.task
        if task.kind == "regression":
            return raw[0] * task.std + task.mean if isinstance(raw, list) else raw * task.std + task.mean
        if task.kind == "binary":
            p = raw[0] if isinstance(raw, list) else raw
            return [1.0 - p, p]
        return list(raw)

    def _count(self, rows: int) -> None:
        """Count rows about to be scored; build the masks once :data:`MASKS_AFTER_ROWS` are."""
        self.rows_scored += rows
        if self.masked is None and self.rows_scored >= MASKS_AFTER_ROWS:
            self.masked = MaskedForest.build(self.booster, self.model_string, self.feature_map.n_fields) or False

    def _lightgbm_row(self, features: list):
        """LightGBM's transformed output for one row's features."""
        self.features[:] = features
        if self._fast is None:
            self._fast = _FastRow(self.booster, self.features) if _c_api() is not None else False
        if self._fast is False:
            return self.booster.predict(self.features[None, :])[0].tolist()
        return self._fast.predict()


class _FastRow:
    """LightGBM's prepared single-row prediction of ``booster`` for the float32 row buffer
    ``features`` (refilled before each :meth:`predict`).

    Raises:
        RuntimeError: with LightGBM's message, when it cannot prepare the prediction.
    """

    def __init__(self, booster: lightgbm.Booster, features: np.ndarray):
        self.library = _c_api()
        self.handle = ctypes.c_void_p()
        self.out = np.zeros(max(1, booster.num_model_per_iteration()), dtype=np.float64)
        self.out_len = ctypes.c_int64()
        self.booster, self.features = booster, features  # the handle and pointers refer to them
        status = self.library.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(_DTYPE_FLOAT32), ctypes.c_int32(len(features)), ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(self.handle))
        if status != 0:
            raise RuntimeError(self.library.LGBM_GetLastError().decode())
        self.call = self.library.LGBM_BoosterPredictForMatSingleRowFast
        self.arguments = (self.handle, features.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self.out_len),
                          self.out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))

    def predict(self) -> list:
        """The booster's outputs (LightGBM's transformed output) for the row in the buffer.

        Raises:
            RuntimeError: with LightGBM's message, when the call fails.
        """
        if self.call(*self.arguments) != 0:
            raise RuntimeError(self.library.LGBM_GetLastError().decode())
        return self.out.tolist()

    def __del__(self):
        if getattr(self, "handle", None) and self.handle.value:
            self.library.LGBM_FastConfigFree(self.handle)
