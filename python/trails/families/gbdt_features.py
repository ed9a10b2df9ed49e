"""Encoded rows as a feature matrix for trees, and the train set LightGBM bins once per split.

Rows arrive as every family gets them (:mod:`trails.data.layout`): ``ids`` int64 ``[N, F]``
and ``values`` float32 ``[N, F]``. Trees split on one number per field instead
(:func:`feature_matrix`): a numeric field's standardised value, a categorical field's id less
the field's smallest train id as a category code (a LightGBM categorical feature: small, dense
codes from 0, as LightGBM wants them), and NaN where the id is a *missing* or an *unknown* id —
the layout puts all of those last, at ids ≥ ``n_ids − 2·F`` — or below the field's smallest
train id (a category train never held).

Which fields are numeric is decided once, from the train split of the first training
(:func:`feature_map_of`: a field is numeric iff some train value is not 1.0; a categorical
field's value is always 1.0), and kept with the model (:class:`FeatureMap`), so predict and
export read rows as training did.

Binning the train rows (LightGBM's ``Dataset.construct``) is the costly part of starting a
tree candidate; :func:`train_dataset` does it once per train split object and every candidate
of a run shares it (``feature_pre_filter=False`` lets their ``min_data_in_leaf`` differ).
"""

from __future__ import annotations

import weakref

import lightgbm
import numpy as np

from trails.serving.tree_format import FeatureMap, as_numpy, feature_map_of, feature_matrix

MAX_BIN = 255
"""Histogram bins of a numeric field (LightGBM's default; a dataset parameter, so one value for
every candidate that shares the binned train set)."""

DATA_RANDOM_SEED = 1
"""Seed of LightGBM's row sample for bin boundaries: fixed, so that candidates of different
seeds share one binned train set (and the same data bins alike in every run)."""


def lightgbm_labels(labels) -> np.ndarray:
    """A split's labels as LightGBM takes them: float64 class indices or standardised targets."""
    return as_numpy(labels).astype(np.float64)


def dataset_params(num_threads: int) -> dict:
    """The LightGBM dataset parameters every candidate's train set is binned with."""
    return {"max_bin": MAX_BIN, "feature_pre_filter": False, "data_random_seed": DATA_RANDOM_SEED,
            "verbosity": -1, "num_threads": int(num_threads)}


def new_dataset(data, feature_map: FeatureMap, num_threads: int, reference=None) -> lightgbm.Dataset:
    """A LightGBM dataset of the split ``data`` (:class:`~trails.refinement.data.SplitTensors`),
    not binned yet; with ``reference``, it will be binned with that dataset's bin boundaries
    (a validation set, or a resumed candidate's own train set)."""
    return lightgbm.Dataset(feature_matrix(data.ids, data.values, feature_map), lightgbm_labels(data.labels),
                            categorical_feature=feature_map.categorical_fields, reference=reference,
                            params=dataset_params(num_threads), free_raw_data=True)


def build_dataset(data, feature_map: FeatureMap, num_threads: int, reference=None) -> lightgbm.Dataset:
    """:func:`new_dataset`, binned (``Dataset.construct``)."""
    return new_dataset(data, feature_map, num_threads, reference).construct()


_DATASETS: dict[int, tuple[FeatureMap, lightgbm.Dataset]] = {}
"""id(train split) → its feature map and binned dataset (an entry goes with its split)."""


def train_dataset(split, n_ids: int, num_threads: int) -> tuple[FeatureMap, lightgbm.Dataset]:
    """The feature map and the binned LightGBM train set of ``split`` (a
    :class:`~trails.refinement.data.SplitTensors`, or a split still being read: its complete
    rows are waited for), built at the first call for that split object and shared by every
    later one while it lives (a finaliser drops the entry with the split). Nothing may change
    the returned dataset (no ``init_score``, no parameters beyond the boosters' own)."""
    key = id(split)
    if key not in _DATASETS:
        rows = split.complete()
        feature_map = feature_map_of(rows.values, n_ids, rows.ids)
        _DATASETS[key] = (feature_map, build_dataset(rows, feature_map, num_threads))
        weakref.finalize(split, _DATASETS.pop, key, None)
    return _DATASETS[key]


_WATCHED: dict[tuple[int, int], lightgbm.Dataset] = {}
"""(id(valid rows), id(train split)) → the valid rows binned as the train set is."""


def watched_dataset(data, split, n_ids: int, num_threads: int) -> lightgbm.Dataset:
    """The valid rows ``data`` (a :class:`~trails.refinement.data.SplitTensors`, e.g. the
    decision sample) as a LightGBM validation set binned with the shared train set of ``split``
    (:func:`train_dataset`), built once per pair of split objects and shared by every booster
    that watches it (each keeps its own running scores of it); an entry goes with ``data``."""
    key = (id(data), id(split))
    if key not in _WATCHED:
        feature_map, shared = train_dataset(split, n_ids, num_threads)
        _WATCHED[key] = build_dataset(data, feature_map, num_threads, reference=shared)
        weakref.finalize(data, _WATCHED.pop, key, None)
    return _WATCHED[key]
