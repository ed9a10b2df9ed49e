"""Continuing stored trees on the train split, with the stored trees' scores of the rows from
their bit masks (:mod:`trails.serving.tree_masks`) instead of LightGBM's own prediction.

``lightgbm.train(init_model=...)`` first predicts every train row and every watched row with
the stored trees (their raw scores start the new rounds): frappe's 202,027 train rows under a
warm start's forest of 1,420 trees took ~24 s of a 60 s budget here, in one uninterruptible
step. The masks score them in ~3 s (building them included). :func:`resumed_booster` then
builds what ``lightgbm.train`` builds: a booster of the train set whose init scores are those
scores, the stored trees merged in front of its own (``LGBM_BoosterMerge``, as
``lightgbm.Booster`` merges an init model), watching ``watch`` (its init scores likewise), and
runs one round. It returns None where the masks cannot express the stored trees; the caller
then lets ``lightgbm.train`` do it.
"""

from __future__ import annotations

import lightgbm

from trails.families.gbdt_features import new_dataset
from trails.serving.tree_format import FeatureMap, feature_matrix
from trails.serving.tree_masks import MaskedForest
from trails.serving.trees_forward import lightgbm_library


def scored_dataset(data, feature_map: FeatureMap, masked: MaskedForest, num_threads: int,
                   reference: lightgbm.Dataset) -> lightgbm.Dataset:
    """:func:`~trails.families.gbdt_features.new_dataset` of ``data`` (binned with
    ``reference``'s boundaries) whose init scores are the masked trees' raw scores of its rows
    (``(N,)``, or ``(N, C)`` for multiclass)."""
    dataset = new_dataset(data, feature_map, num_threads, reference=reference)
    raw = masked.raw(feature_matrix(data.ids, data.values, feature_map))
    return dataset.set_init_score(raw[:, 0] if raw.shape[1] == 1 else raw)


def resumed_booster(init_model: lightgbm.Booster, model_string: str, params: dict, rows, feature_map: FeatureMap,
                    num_threads: int, shared: lightgbm.Dataset, watch=None,
                    watch_name: str = "watched") -> lightgbm.Booster | None:
    """A training booster holding ``init_model``'s trees (loaded from ``model_string``) and one
    more round trained on ``rows`` (the complete train split, binned as ``shared``), watching
    ``watch`` under ``watch_name`` when given; None when the masks cannot express the trees.

    Raises:
        RuntimeError: with LightGBM's message, when it refuses the merge.
    """
    library = lightgbm_library("LGBM_BoosterMerge")
    masked = MaskedForest.build(init_model, model_string, feature_map.n_fields) if library is not None else None
    if masked is None:
        return None
    own = scored_dataset(rows, feature_map, masked, num_threads, shared)
    booster = lightgbm.Booster(params=dict(params), train_set=own)
    if library.LGBM_BoosterMerge(booster._handle, init_model._handle) != 0:
        raise RuntimeError(library.LGBM_GetLastError().decode())
    if watch is not None:
        booster.add_valid(scored_dataset(watch, feature_map, masked, num_threads, own), watch_name)
    booster.update()
    return booster
