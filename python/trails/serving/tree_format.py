"""The stored trees model's format, and the feature matrix trees read: torch-free, so that
serving (:mod:`trails.serving`) and the gbdt family (:mod:`trails.families.gbdt_features`,
:mod:`trails.families.gbdt_model`) share one definition.

**Bytes** (what ``trails.models.weights`` stores for the gbdt family): UTF-8 text, one JSON
header line, then LightGBM's model string (``Booster.model_to_string``)::

    {"format": "trails-gbdt", "version": 1, "feature_map": {"n_ids": 5382, "numeric": [false, true]}}
    tree
    version=v4
    ...

A later version of the format raises a clear error here instead of predicting wrongly.

**Features** (:func:`feature_matrix`): trees split on one number per field — a numeric
field's standardised value, a categorical field's id less the field's smallest train id as a
category code, and NaN where the id is a *missing* or an *unknown* id (the layout puts all of
those last, at ids ≥ ``n_ids − 2·F``) or below the field's smallest train id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from trails.errors import TrailsError

BYTES_FORMAT = "trails-gbdt"
BYTES_VERSION = 1
"""The version of the format this code writes and reads."""

HEADER_END = b"\n"

NUMERIC_SENTINEL = 1.0
"""The value of every categorical field; a field holding any other value is numeric."""


@dataclass(frozen=True)
class FeatureMap:
    """How a model's rows become its feature matrix.

    Attributes:
        n_ids: the layout's id count (missing and unknown ids are ≥ ``n_ids − 2·n_fields``).
        numeric: per field, whether it is numeric (its value is the feature) or categorical
            (its id less its offset is the feature).
        offsets: per field, the smallest id of a categorical field in train (0 for a numeric
            one, and for every field of a model stored before offsets existed).
    """

    n_ids: int
    numeric: tuple[bool, ...]
    offsets: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.offsets:
            object.__setattr__(self, "offsets", (0,) * len(self.numeric))

    @property
    def n_fields(self) -> int:
        return len(self.numeric)

    @property
    def first_missing_id(self) -> int:
        """The smallest missing or unknown id: ``n_ids − 2·n_fields``."""
        return self.n_ids - 2 * self.n_fields

    @property
    def categorical_fields(self) -> list[int]:
        """Indexes of the categorical fields (LightGBM's ``categorical_feature``)."""
        return [i for i, numeric in enumerate(self.numeric) if not numeric]

    def to_json(self) -> dict:
        """What the stored bytes' header holds (:meth:`from_json` reads it back)."""
        return {"n_ids": self.n_ids, "numeric": list(self.numeric), "offsets": list(self.offsets)}

    @classmethod
    def from_json(cls, data: dict) -> "FeatureMap":
        """The map of :meth:`to_json`'s object (``offsets`` absent on older models: all 0)."""
        return cls(int(data["n_ids"]), tuple(bool(flag) for flag in data["numeric"]),
                   tuple(int(offset) for offset in data.get("offsets", ())))


def as_numpy(tensor) -> np.ndarray:
    """A tensor (any device) or an array as a numpy array."""
    return tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)


def feature_map_of(values, n_ids: int, ids=None) -> FeatureMap:
    """The feature map of a train split's ``values`` (float32 ``[N, F]``) and ``ids`` (int64
    ``[N, F]``; None: every offset 0): field i is numeric iff some value in column i is not
    :data:`NUMERIC_SENTINEL` (1.0); a categorical field's offset is its smallest id that is
    not a missing or unknown one."""
    values = as_numpy(values)
    numeric = (values != NUMERIC_SENTINEL).any(axis=0) if len(values) else np.zeros(values.shape[1], bool)
    offsets = [0] * values.shape[1]
    if ids is not None and len(values):
        ids = as_numpy(ids)
        first_missing = int(n_ids) - 2 * values.shape[1]
        known = np.where(ids < first_missing, ids, np.iinfo(np.int64).max).min(axis=0)
        offsets = [0 if numeric[i] or known[i] >= first_missing else int(known[i]) for i in range(len(offsets))]
    return FeatureMap(int(n_ids), tuple(bool(flag) for flag in numeric), tuple(offsets))


def feature_matrix(ids, values, feature_map: FeatureMap) -> np.ndarray:
    """The trees' input for encoded rows: float32 ``[N, F]``.

    Column i is ``values[:, i]`` for a numeric field, ``float(ids[:, i])`` (the global id as a
    category code, exact below 2**24) for a categorical one, and NaN wherever
    ``ids[:, i] >= feature_map.first_missing_id`` (a missing or unknown value).

    Args:
        ids: int64 ``[N, F]``; values: float32 ``[N, F]`` (tensors on any device, or arrays).
        feature_map: the model's (:func:`feature_map_of` of its train split).

    Raises:
        ValueError: when ``ids`` or ``values`` is not ``[N, feature_map.n_fields]``.
    """
    ids, values = as_numpy(ids), as_numpy(values)
    shape = (ids.shape[0] if ids.ndim else 0, feature_map.n_fields)
    if ids.shape != shape or values.shape != shape:
        raise ValueError(f"ids and values must both be (N, {feature_map.n_fields}), got {ids.shape} and {values.shape}")
    numeric = np.asarray(feature_map.numeric, dtype=bool)
    codes = ids - np.asarray(feature_map.offsets, dtype=np.int64)
    matrix = np.where(numeric, values.astype(np.float32), codes.astype(np.float32))
    matrix[(ids >= feature_map.first_missing_id) | (codes < 0)] = np.nan
    return matrix


def read_trees_bytes(data: bytes) -> tuple[str, FeatureMap]:
    """(LightGBM model string, feature map) of stored trees bytes (see the module docstring).

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
    return model_string.decode(), FeatureMap.from_json(header["feature_map"])


def trees_bytes(model_string: str, feature_map: FeatureMap) -> bytes:
    """The stored bytes of a model string and its feature map (inverse of :func:`read_trees_bytes`)."""
    header = {"format": BYTES_FORMAT, "version": BYTES_VERSION, "feature_map": feature_map.to_json()}
    return json.dumps(header).encode() + HEADER_END + model_string.encode()


def as_outputs(predictions: np.ndarray, task) -> np.ndarray:
    """LightGBM's transformed predictions (P(positive) ``[N]``, class probabilities, the
    standardised target) as :meth:`trails.task.Task.outputs` gives an MLP's: class
    probabilities float64 ``[N, C]`` (binary: ``[1 − p, p]``), or the prediction in the
    label's units float64 ``[N]``."""
    if task.kind == "regression":
        return predictions * task.std + task.mean
    if task.kind == "binary":
        return np.column_stack([1.0 - predictions, predictions])
    return predictions.reshape(-1, task.n_outputs)


def empty_model_outputs(task, n_rows: int) -> np.ndarray:
    """What a booster of no trees predicts for ``n_rows`` rows, as :func:`as_outputs` gives it."""
    if task.kind == "regression":
        return np.full(n_rows, float(task.mean))
    return np.full((n_rows, task.n_outputs), 1.0 / task.n_outputs)
