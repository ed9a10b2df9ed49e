"""The gradient-boosted trees family (trails.families.gbdt) on synthetic rows: no database.

Rows are encoded as the layout encodes them: field 0 categorical (5 values, ids 0..4), field 1
numeric (id 5, standardised value), field 2 categorical (4 values, ids 6..9), then a missing and
an unknown id per field (10..15); some rows hold missing and unknown ids.
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import pickle
import time

import numpy as np
import onnxruntime
import pytest
import torch

from trails.errors import TrailsError
from trails.families import GBDT, Candidate, ModelFamily, ModelHyper, Trainable, get_family, parse_candidate
from trails.families.gbdt_training import EARLY_STOPPING_PATIENCE, prediction_reserve
from trails.families.gbdt_config import PORTFOLIO, GbdtConfig, parse_config, portfolio, round_nodes
from trails.families.gbdt_features import FeatureMap, feature_map_of, feature_matrix
from trails.families.gbdt_model import raw_predictions
from trails.refinement.data import SplitTensors
from trails.refinement.settings import TrainingSettings
from trails.refinement.steps import Advance, HalvingContext
from trails.refinement.trainer import Cancelled
from trails.task import Task

CARDINALITIES = (5, 1, 4)
FIRST_IDS = (0, 5, 6)
N_FIELDS = len(CARDINALITIES)
N_IDS = sum(CARDINALITIES) + 2 * N_FIELDS
MISSING_IDS = tuple(sum(CARDINALITIES) + 2 * i for i in range(N_FIELDS))
UNKNOWN_IDS = tuple(missing + 1 for missing in MISSING_IDS)
SETTINGS = TrainingSettings(rounds_per_unit=10)
CONFIG = GbdtConfig(num_leaves=15, learning_rate=0.2, min_child_samples=10, feature_fraction=1.0,
                    bagging_fraction=0.8, lambda_l2=1.0)
TASKS = {"binary": Task("binary", ("no", "yes")),
         "multiclass": Task("multiclass", ("a", "b", "c")),
         "regression": Task("regression", (), mean=3.0, std=2.0, metric="r2")}
HYPER = ModelHyper(n_ids=N_IDS, n_fields=N_FIELDS)


def encoded_rows(n: int, seed: int, kind: str) -> SplitTensors:
    """``n`` rows with a signal in every field and ~5 % missing or unknown ids per field."""
    rng = np.random.default_rng(seed)
    first, numeric, third = rng.integers(0, 5, n), rng.normal(size=n).astype(np.float32), rng.integers(0, 4, n)
    ids = np.stack([FIRST_IDS[0] + first, np.full(n, FIRST_IDS[1]), FIRST_IDS[2] + third], axis=1)
    values = np.stack([np.ones(n), numeric, np.ones(n)], axis=1).astype(np.float32)
    for field in range(N_FIELDS):
        draw = rng.random(n)
        ids[draw < 0.03, field] = MISSING_IDS[field]
        if field != 1:  # a numeric field has no unknown value
            ids[(draw >= 0.03) & (draw < 0.06), field] = UNKNOWN_IDS[field]
    values[ids[:, 1] == MISSING_IDS[1], 1] = 1.0
    if kind == "binary":
        labels = ((first % 2 == 0) ^ (numeric > 0.3)).astype(np.int64)
        labels[rng.random(n) < 0.05] ^= 1
    elif kind == "multiclass":
        labels = ((first + (numeric > 0)) % 3).astype(np.int64)
    else:
        labels = (numeric + 0.5 * third + 0.1 * rng.normal(size=n)).astype(np.float32)
    return SplitTensors.from_arrays(ids, values, labels)


@pytest.fixture(scope="module")
def splits():
    """kind → (train split, valid split); the same objects for the whole module (their binned
    train sets are shared, as in a run)."""
    return {kind: (encoded_rows(2000, 1, kind), encoded_rows(1000, 2, kind)) for kind in TASKS}


@pytest.fixture(scope="module")
def trained(splits):
    """kind → a trainable of CONFIG trained 3 units on that kind's train split."""
    result = {}
    for kind, task in TASKS.items():
        trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=7, task=task)
        GBDT.train(trainable, splits[kind][0], 3, SETTINGS)
        result[kind] = trainable
    return result


def context(train, valid, task, deadline=None, should_stop=None) -> HalvingContext:
    return HalvingContext(train, valid, N_IDS, N_FIELDS, SETTINGS, 0, torch.device("cpu"), task, 3, deadline,
                          should_stop)


# -- configurations

def test_config_text_round_trip():
    odd = GbdtConfig(7, 0.123456789, 3, 0.55, 1, 0.001)
    for config in [*PORTFOLIO, odd]:
        assert parse_config(config.text) == config
        assert hash(parse_config(config.text)) == hash(config)
        candidate = parse_candidate(Candidate("gbdt", config).text)
        assert candidate == Candidate("gbdt", config) and candidate.text.startswith("gbdt:")
    assert GbdtConfig(31, 0.1, 20, 0.8, 0.8, 1).text == "leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,cat=10"
    assert parse_config(" cat=50,l2=1, bf=0.8,ff=0.8,min_child=20,lr=0.1,leaves=31") == GbdtConfig(31, 0.1, 20, 0.8, 0.8, 1, 50)
    # a text written before cat existed: LightGBM's default, what it trained with
    assert parse_config("leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1").cat_smooth == 10


@pytest.mark.parametrize("text", ["", "leaves=31", "leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,depth=3",
                                  "leaves=x,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1",
                                  "leaves=31,leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8",
                                  "leaves=31,lr=0,min_child=20,ff=0.8,bf=0.8,l2=1",
                                  "leaves=31.5,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1",
                                  "leaves=31,lr=0.1,min_child=20,ff=1.5,bf=0.8,l2=1", "64-128-64",
                                  "leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,cat=-1"])
def test_bad_config_text(text):
    with pytest.raises(TrailsError) as raised:
        parse_candidate("gbdt:" + text)
    assert raised.value.hint and "leaves=" in raised.value.hint


def test_portfolio_is_fixed_and_complementary_first():
    assert portfolio(len(PORTFOLIO)) == portfolio(99) == list(PORTFOLIO)
    assert portfolio(3) == portfolio(8)[:3] and portfolio(0) == [] and portfolio(100) == list(PORTFOLIO)
    assert len(set(PORTFOLIO)) == len(PORTFOLIO)
    fast, slow, smoothed = PORTFOLIO[:3]  # what a run of 2-3 trees candidates races
    assert fast.learning_rate >= 0.2 and slow.learning_rate <= 0.05 and slow.num_leaves > fast.num_leaves
    assert smoothed.cat_smooth > 10 == fast.cat_smooth == slow.cat_smooth
    assert GbdtConfig().lightgbm_params()["cat_smooth"] == 10
    with pytest.raises(TrailsError):
        portfolio(-1)


def test_variations_slow_down_then_regularise_and_never_grow_a_round():
    config = PORTFOLIO[0]
    nearby = GBDT.variations(config)
    assert nearby[0].learning_rate == config.learning_rate / 2 and nearby[0].num_leaves == config.num_leaves
    assert len(set(nearby)) == len(nearby) and config not in nearby
    for other in nearby:
        assert parse_candidate("gbdt:" + other.text).config == other
        assert other.num_leaves <= config.num_leaves and round_nodes(other, 2) <= round_nodes(config, 2)
    tiny = GbdtConfig(4, 0.006, 600, 0.35, 1.0, 0.0)  # every step but l2's would leave its range
    assert GBDT.variations(tiny) == [dataclasses.replace(tiny, lambda_l2=1.0)]
    assert get_family("mlp").variations((16, 8)) == []


def test_family_is_registered_and_counts_nodes(trained):
    assert get_family("gbdt") is GBDT and GBDT.resource == "boosting rounds" and GBDT.export_formats == ("onnx",)
    assert isinstance(GBDT, ModelFamily) and isinstance(trained["binary"], Trainable)
    assert trained["binary"].candidate == Candidate("gbdt", CONFIG)
    assert GBDT.parameter_count(CONFIG, HYPER, 2) == 2 * CONFIG.num_leaves - 1
    assert GBDT.parameter_count(CONFIG, HYPER, 1) == 2 * CONFIG.num_leaves - 1
    assert GBDT.parameter_count(CONFIG, HYPER, 3) == 3 * (2 * CONFIG.num_leaves - 1)
    assert GBDT.max_iterations(4, 1000, SETTINGS) == 4 * SETTINGS.rounds_per_unit
    trainable = trained["multiclass"]
    nodes = GBDT.model_parameters(trainable.model)
    trees = trainable.booster.num_trees()
    assert trees == 3 * 3 * SETTINGS.rounds_per_unit
    assert 3 * trees <= nodes <= trees * (2 * CONFIG.num_leaves - 1)
    with pytest.raises(TrailsError):
        GBDT.build(CONFIG, HYPER, 2)


# -- rows as features

def test_feature_map_rule_and_matrix():
    values = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 1.0]], dtype=np.float32)
    assert feature_map_of(values, 20).numeric == (False, False, True)
    assert feature_map_of(torch.ones((3, 2)), 8).numeric == (False, False)
    feature_map = FeatureMap(n_ids=16, numeric=(False, True, False))  # missing/unknown ids >= 10
    ids = np.array([[3, 5, 9], [10, 12, 7], [11, 5, 15]])
    values = np.array([[1, -0.25, 1], [1, 1, 1], [1, 2.5, 1]], dtype=np.float32)
    matrix = feature_matrix(ids, values, feature_map)
    expected = np.array([[3, -0.25, 9], [np.nan, np.nan, 7], [np.nan, 2.5, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.float32
    with pytest.raises(ValueError):
        feature_matrix(ids[:, :2], values[:, :2], feature_map)


def test_trainable_keeps_the_train_splits_feature_map(trained):
    """Numeric fields by their values; categorical codes from 0 (offset: the field's first id)."""
    first_ids = tuple(sum(CARDINALITIES[:i]) for i in range(N_FIELDS))
    assert trained["binary"].feature_map == FeatureMap(N_IDS, (False, True, False), (0, 0, first_ids[2]))


def test_categorical_codes_start_at_zero_and_ids_below_train_are_missing():
    ids = np.array([[4, 7], [5, 9], [6, 8]])
    feature_map = feature_map_of(np.ones((3, 2), dtype=np.float32), 14, ids)  # missing/unknown ids >= 10
    assert feature_map.offsets == (4, 7)
    matrix = feature_matrix(np.array([[4, 9], [3, 10], [6, 6]]), np.ones((3, 2), dtype=np.float32), feature_map)
    np.testing.assert_array_equal(matrix, np.array([[0, 2], [np.nan, np.nan], [2, np.nan]], dtype=np.float32))


# -- learning

@pytest.mark.parametrize("kind, better_than", [("binary", 0.8), ("multiclass", 0.6), ("regression", 0.5)])
def test_learns_a_signal_beyond_chance(trained, splits, kind, better_than):
    """AUC (chance 0.5), accuracy (chance 1/3), R² (a constant: 0) on held-out rows."""
    trainable, valid = trained[kind], splits[kind][1]
    assert trainable.epochs_trained == 3 and trainable.rounds == 3 * SETTINGS.rounds_per_unit
    assert len(trainable.epoch_losses) == 3 and trainable.epoch_losses[-1] < trainable.epoch_losses[0]
    assert trainable.seconds_per_unit is not None and trainable.seconds_per_unit > 0
    assert GBDT.evaluate(trainable.model, valid, TASKS[kind], 512) > better_than


def test_predict_has_the_mlp_families_format(trained, splits):
    for kind, task in TASKS.items():
        valid = splits[kind][1]
        outputs = GBDT.predict(trained[kind].model, task, valid.ids, valid.values)
        assert outputs.dtype == np.float64
        if kind == "regression":
            assert outputs.shape == (len(valid),)
            target = task.decode_targets(valid.labels.numpy())
            assert abs(outputs.mean() - target.mean()) < 0.5 * target.std()
        else:
            assert outputs.shape == (len(valid), task.n_outputs)
            np.testing.assert_allclose(outputs.sum(axis=1), 1.0, atol=1e-9)


def test_train_in_two_calls_is_train_in_one(splits):
    train, valid = splits["binary"]
    task = TASKS["binary"]
    whole = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=3, task=task)
    parts = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=3, task=task)
    GBDT.train(whole, train, 2, SETTINGS)
    GBDT.train(parts, train, 1, SETTINGS)
    GBDT.train(parts, train, 1, SETTINGS)
    assert whole.rounds == parts.rounds == 2 * SETTINGS.rounds_per_unit
    assert whole.booster.current_iteration() == parts.booster.current_iteration()
    np.testing.assert_allclose(GBDT.predict(whole.model, task, valid.ids, valid.values),
                               GBDT.predict(parts.model, task, valid.ids, valid.values), atol=1e-9)


def test_exported_state_continues_elsewhere(splits):
    train, valid = splits["multiclass"]
    task = TASKS["multiclass"]
    original = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=5, task=task)
    GBDT.train(original, train, 1, SETTINGS)
    state = pickle.loads(pickle.dumps(original.export_state()))
    resumed = GBDT.trial_from_state(state, N_IDS, N_FIELDS, SETTINGS, task=task)
    before = GBDT.predict(original.model, task, valid.ids, valid.values)
    np.testing.assert_allclose(GBDT.predict(resumed.model, task, valid.ids, valid.values), before, atol=1e-9)
    assert (resumed.epochs_trained, resumed.rounds, resumed.seed) == (1, SETTINGS.rounds_per_unit, 5)
    losses = GBDT.train(resumed, train, 2, SETTINGS)
    assert len(losses) == 2 and resumed.epochs_trained == 3 and resumed.rounds == 3 * SETTINGS.rounds_per_unit
    assert resumed.booster.current_iteration() == 3 * SETTINGS.rounds_per_unit
    assert losses[-1] < original.epoch_losses[-1]
    assert GBDT.evaluate(resumed.model, valid, task, 512) >= GBDT.evaluate(original.model, valid, task, 512) - 0.02


def test_fresh_state_and_candidates_sharing_one_train_set(splits):
    train, valid = splits["binary"]
    fresh = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=1, task=TASKS["binary"])
    state = fresh.export_state()
    assert state["model"] is None
    assert GBDT.trial_from_state(state, N_IDS, N_FIELDS, SETTINGS, task=TASKS["binary"]).rounds == 0
    outputs = GBDT.predict(fresh.model, TASKS["binary"], valid.ids, valid.values)  # no trees: P = 0.5
    np.testing.assert_allclose(outputs, 0.5)
    for config in portfolio(3):  # other min_child_samples on the same binned set
        trainable = GBDT.new_trial(config, N_IDS, N_FIELDS, 0, SETTINGS, seed=2, task=TASKS["binary"])
        GBDT.train(trainable, train, 1, SETTINGS)
        assert GBDT.evaluate(trainable.model, valid, TASKS["binary"], 512) > 0.7


def noisy_rows(n: int, seed: int) -> SplitTensors:
    """Binary rows whose label follows field 0 for 60 % of the rows and is a coin flip for the
    rest: a fast rate with large trees overfits them within a few dozen rounds."""
    rows = encoded_rows(n, seed, "binary")
    rng = np.random.default_rng(seed + 100)
    signal = (rows.ids[:, 0].numpy() % 2 == 0).astype(np.int64)
    labels = np.where(rng.random(n) < 0.6, signal, rng.integers(0, 2, n))
    return SplitTensors.from_arrays(rows.ids.numpy(), rows.values.numpy(), labels)


OVERFITTING = GbdtConfig(num_leaves=63, learning_rate=0.5, min_child_samples=2)


def test_watched_training_keeps_its_best_round_and_stops(splits):
    train, valid = noisy_rows(1500, 11), noisy_rows(800, 12)
    task = TASKS["binary"]
    trainable = GBDT.new_trial(OVERFITTING, N_IDS, N_FIELDS, 0, SETTINGS, seed=2, task=task)
    GBDT.train(trainable, train, 30, SETTINGS, watch=valid)
    assert trainable.watched and trainable.rounds == 30 * SETTINGS.rounds_per_unit
    best, grown = trainable.best_iteration, trainable.booster.current_iteration()
    assert trainable.converged and best + EARLY_STOPPING_PATIENCE == grown < trainable.rounds  # it stopped growing
    model = trainable.model
    assert model.iterations == best
    np.testing.assert_allclose(GBDT.predict(model, task, valid.ids, valid.values)[:, 1],
                               trainable.booster.predict(feature_matrix(valid.ids, valid.values, model.feature_map),
                                                         num_iteration=best), atol=1e-12)
    assert trainable.snapshot().model().booster.current_iteration() == best
    assert GBDT.to_bytes(model) == GBDT.snapshot_bytes(trainable.snapshot())
    probabilities = trainable.booster.predict(feature_matrix(valid.ids, valid.values, model.feature_map))
    labels = valid.labels.numpy()
    full_loss = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert trainable.best_loss < full_loss  # the rounds after the best one overfit
    unwatched = GBDT.new_trial(OVERFITTING, N_IDS, N_FIELDS, 0, SETTINGS, seed=2, task=task)
    GBDT.train(unwatched, train, 3, SETTINGS)
    assert not unwatched.watched and unwatched.model.iterations is None and not unwatched.converged


def test_watched_state_resumes_at_its_best_round():
    train, valid = noisy_rows(1500, 13), noisy_rows(800, 14)
    task = TASKS["binary"]
    original = GBDT.new_trial(OVERFITTING, N_IDS, N_FIELDS, 0, SETTINGS, seed=3, task=task)
    GBDT.train(original, train, 8, SETTINGS, watch=valid)
    state = pickle.loads(pickle.dumps(original.export_state()))
    assert state["best_loss"] == original.best_loss
    resumed = GBDT.trial_from_state(state, N_IDS, N_FIELDS, SETTINGS, task=task)
    GBDT.train(resumed, train, 1, SETTINGS, watch=valid)
    assert resumed.watched and resumed.best_loss <= original.best_loss
    assert resumed.best_iteration >= original.best_iteration  # it went on from the best round


@pytest.mark.parametrize("kind", list(TASKS))
def test_the_watched_rows_are_scored_from_what_lightgbm_kept_and_as_a_prediction_would(splits, kind):
    """Evaluating the watched decision sample reads the predictions LightGBM kept while
    boosting (no prediction over the trees); they are what predicting the same rows gives."""
    train, valid = splits[kind]
    task = TASKS[kind]
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=5, task=task)
    GBDT.train(trainable, train, 4, SETTINGS, watch=valid)
    model = trainable.model
    assert model.known is not None and model.known[0] is valid
    same_rows = SplitTensors(valid.ids.clone(), valid.values.clone(), valid.labels.clone())  # another object
    np.testing.assert_allclose(model.known[1].reshape(-1),
                               raw_predictions(model, valid.ids, valid.values).reshape(-1), rtol=1e-9, atol=1e-12)
    assert GBDT.evaluate(model, valid, task, 512) == pytest.approx(GBDT.evaluate(model, same_rows, task, 512),
                                                                    rel=1e-9, abs=1e-12)
    state = pickle.loads(pickle.dumps(trainable.export_state()))  # resumed elsewhere (a Ray worker)
    resumed = GBDT.trial_from_state(state, N_IDS, N_FIELDS, SETTINGS, task=task)
    GBDT.train(resumed, train, 1, SETTINGS, watch=valid)
    assert GBDT.evaluate(resumed.model, valid, task, 512) == pytest.approx(
        GBDT.evaluate(resumed.model, same_rows, task, 512), rel=1e-9, abs=1e-12)


def test_boosting_keeps_time_for_the_winners_predictions(splits):
    train, _ = splits["binary"]
    task = TASKS["binary"]
    costly = dataclasses.replace(SETTINGS, predict_s=0.01, prediction_rows=1000)  # 15 s a round of trees
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, costly, seed=5, task=task)
    assert prediction_reserve(trainable) == pytest.approx(1.5 * 0.01 * 1 * 1000)
    assert GBDT.train(trainable, train, 2, costly, deadline=time.monotonic() + 10) == [] and trainable.rounds == 0
    free = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=5, task=task)
    assert prediction_reserve(free) == 0.0
    assert len(GBDT.train(free, train, 2, SETTINGS, deadline=time.monotonic() + 10)) == 2


# -- snapshots and bytes

def test_snapshot_is_unaffected_by_further_training(splits):
    train, valid = splits["regression"]
    task = TASKS["regression"]
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=4, task=task)
    GBDT.train(trainable, train, 1, SETTINGS)
    snapshot = trainable.snapshot()
    assert trainable.state_dict_cpu() == snapshot
    kept = GBDT.predict(GBDT.from_snapshot(CONFIG, snapshot, N_IDS, N_FIELDS, SETTINGS, task), task,
                        valid.ids, valid.values)
    GBDT.train(trainable, train, 1, SETTINGS)
    again = GBDT.predict(GBDT.from_snapshot(CONFIG, snapshot, N_IDS, N_FIELDS, SETTINGS, task), task,
                         valid.ids, valid.values)
    np.testing.assert_allclose(again, kept, atol=1e-12)
    assert np.abs(GBDT.predict(trainable.model, task, valid.ids, valid.values) - kept).max() > 1e-3


def test_bytes_round_trip_predicts_the_same(trained, splits):
    for kind, task in TASKS.items():
        model, valid = trained[kind].model, splits[kind][1]
        data = GBDT.to_bytes(model)
        assert data == GBDT.snapshot_bytes(trained[kind].snapshot())
        loaded = GBDT.from_bytes(CONFIG, HYPER, task.n_outputs, data)
        np.testing.assert_allclose(GBDT.predict(loaded, task, valid.ids, valid.values),
                                   GBDT.predict(model, task, valid.ids, valid.values), atol=1e-12)
        assert loaded.feature_map == model.feature_map
    with pytest.raises(TrailsError):
        GBDT.from_bytes(CONFIG, HYPER, 2, b"not a model")
    with pytest.raises(TrailsError):
        GBDT.from_bytes(CONFIG, ModelHyper(n_ids=N_IDS + 1, n_fields=N_FIELDS), 2, GBDT.to_bytes(trained["binary"].model))


# -- export

@pytest.mark.parametrize("kind", list(TASKS))
def test_onnx_export_matches_predict(trained, kind):
    task, model = TASKS[kind], trained[kind].model
    rows = encoded_rows(1000, 9, kind)
    assert (rows.ids >= N_IDS - 2 * N_FIELDS).any(dim=0).all()  # missing or unknown ids in every field
    session = onnxruntime.InferenceSession(GBDT.export(model, task, N_FIELDS, "onnx"))
    assert [i.name for i in session.get_inputs()] == ["ids", "values"]
    output = session.run(["output"], {"ids": rows.ids.numpy(), "values": rows.values.numpy()})[0]
    expected = GBDT.predict(model, task, rows.ids, rows.values)
    if kind == "binary":
        expected = expected[:, 1]
    assert output.shape == expected.shape
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_unsupported_export_format(trained):
    with pytest.raises(TrailsError) as raised:
        GBDT.export(trained["binary"].model, TASKS["binary"], N_FIELDS, "torch_export")
    assert "onnx" in raised.value.hint


# -- finishing, deadlines and cancels

def test_finish_returns_an_evaluated_advance(splits):
    train, valid = splits["binary"]
    task = TASKS["binary"]
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=6, task=task)
    GBDT.train(trainable, train, 1, SETTINGS)
    units = []
    step = GBDT.finish(trainable, context(train, valid, task), time.monotonic() + 60, 0.01,
                       on_epoch=lambda t, loss: units.append(loss))
    assert isinstance(step, Advance) and step.interrupted is False
    assert step.valid_score is not None and math.isfinite(step.valid_score) and step.valid_score > 0.8
    assert units == step.losses and trainable.epochs_trained == 1 + len(step.losses)
    assert step.valid_score == pytest.approx(GBDT.evaluate(trainable.model, valid, task, 512))
    assert trainable.booster.current_iteration() <= trainable.rounds  # ended at its best round


def test_finish_of_a_fresh_candidate_and_without_time(splits):
    train, valid = splits["regression"]
    task = TASKS["regression"]
    fresh = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=8, task=task)
    step = GBDT.finish(fresh, context(train, valid, task), time.monotonic() + 60, 0.0)
    assert step is not None and step.valid_score > 0.5
    late = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=8, task=task)
    assert GBDT.finish(late, context(train, valid, task), time.monotonic() - 1, 0.0) is None


def test_a_fresh_candidate_finishes_to_convergence_whatever_the_evaluations_so_far_took(splits):
    """The time kept for the final evaluation grows with the trees past a rung's rounds, not
    from a fresh booster's first tree (a reserve trained from scratch once stopped after a few
    dozen rounds when the race's evaluations had been slow)."""
    train, valid = splits["binary"]
    task = TASKS["binary"]
    fresh = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=8, task=task)
    step = GBDT.finish(fresh, context(train, valid, task), time.monotonic() + 30, 1.0)
    assert step is not None and fresh.rounds >= fresh.best_iteration + EARLY_STOPPING_PATIENCE  # converged


def test_deadline_stops_training_between_rounds(splits):
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=1, task=TASKS["binary"])
    assert GBDT.train(trainable, splits["binary"][0], 5, SETTINGS, deadline=time.monotonic() - 1) == []
    assert trainable.rounds == 0 and trainable.epochs_trained == 0


def test_cancel_raises(splits):
    train, valid = splits["binary"]
    task = TASKS["binary"]
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=1, task=task)
    with pytest.raises(Cancelled):
        GBDT.train(trainable, train, 2, SETTINGS, should_stop=lambda: True)
    calls = []
    GBDT.train(trainable, train, 1, SETTINGS, should_stop=lambda: calls.append(1) and False)
    assert len(calls) == SETTINGS.rounds_per_unit
    with pytest.raises(Cancelled):
        GBDT.finish(trainable, context(train, valid, task, should_stop=lambda: True), time.monotonic() + 60, 0.0)


# -- settings

def test_rounds_per_unit_setting():
    settings = TrainingSettings(rounds_per_unit=7)
    assert TrainingSettings.from_json(settings.to_json()) == settings
    with pytest.raises(TrailsError):
        TrainingSettings(rounds_per_unit=0).validate()
    old = configparser.ConfigParser()  # a config of before the setting: the default applies
    old.read_dict({"refinement": {"batch_size": "512", "iter_per_epoch": "200", "learning_rate": "0.001",
                                  "embedding_dim": "10", "batch_norm": "true"}})
    assert TrainingSettings.from_config(old).rounds_per_unit == TrainingSettings.rounds_per_unit
    assert TrainingSettings.from_config(old, rounds_per_unit=20).rounds_per_unit == 20


def test_max_nodes_stops_the_rounds_before_the_bound(splits):
    """max_params for trees: boosting stops before a round could take the model past it."""
    bound = 10 * round_nodes(CONFIG, 2) + 3
    capped = dataclasses.replace(SETTINGS, max_nodes=bound)
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, capped, seed=7, task=TASKS["binary"])
    GBDT.train(trainable, splits["binary"][0], 3, capped)
    assert trainable.epochs_trained == 3  # the units complete; the model stops growing
    assert 0 < GBDT.model_parameters(trainable.model) <= bound
    assert trainable.booster.current_iteration() <= 10


def test_memory_estimate_and_configurations_that_do_not_fit():
    from trails.families.gbdt_config import booster_bytes, costliest, fitting

    small, large = GbdtConfig(15, 0.1, 20), GbdtConfig(255, 0.03, 20)
    assert booster_bytes(large, 10_000, 10, 2) > booster_bytes(small, 10_000, 10, 2)
    assert booster_bytes(small, 1_000_000, 10, 5) > booster_bytes(small, 1_000_000, 10, 2)  # a tree per class
    limit = booster_bytes(small, 10_000, 10, 2)
    fits, skipped = fitting([small, large], 10_000, 10, 2, limit)
    assert fits == [small] and skipped == [(large, booster_bytes(large, 10_000, 10, 2))]
    assert costliest(list(PORTFOLIO[:3])) == PORTFOLIO[1]  # 63 leaves, 80 % of fields and rows


@pytest.mark.parametrize("kind", list(TASKS))
def test_stored_trees_resume_through_their_masks_as_through_lightgbms_init_model(splits, kind, monkeypatch):
    """A trainable resumed from its state scores its rows with the stored trees' bit masks
    (trails.families.gbdt_resume) instead of LightGBM's prediction: the same trees grow on, and
    the model predicts what LightGBM's own resume (init_model) gives."""
    from trails.families import gbdt_training

    train, valid = splits[kind]
    task = TASKS[kind]
    original = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=4, task=task)
    GBDT.train(original, train, 3, SETTINGS, watch=valid)
    state = pickle.dumps(original.export_state())
    built = []
    masked_resume = gbdt_training.resumed_booster
    monkeypatch.setattr(gbdt_training, "resumed_booster", lambda *args, **kwargs: built.append(
        masked_resume(*args, **kwargs)) or built[-1])
    through_masks = GBDT.trial_from_state(pickle.loads(state), N_IDS, N_FIELDS, SETTINGS, task=task)
    GBDT.train(through_masks, train, 2, SETTINGS, watch=valid)
    assert len(built) == 1 and built[0] is not None  # the masks expressed the stored trees
    monkeypatch.setattr(gbdt_training, "resumed_booster", lambda *args, **kwargs: None)
    through_lightgbm = GBDT.trial_from_state(pickle.loads(state), N_IDS, N_FIELDS, SETTINGS, task=task)
    GBDT.train(through_lightgbm, train, 2, SETTINGS, watch=valid)
    assert through_masks.resumed and through_lightgbm.resumed
    a, b = through_masks.booster, through_lightgbm.booster
    assert a.current_iteration() == b.current_iteration() > original.booster.current_iteration()
    assert a.num_trees() == b.num_trees()
    np.testing.assert_allclose(GBDT.predict(through_masks.model, task, valid.ids, valid.values),
                               GBDT.predict(through_lightgbm.model, task, valid.ids, valid.values), rtol=0, atol=1e-9)
    assert through_masks.best_loss == pytest.approx(through_lightgbm.best_loss, rel=1e-9)
    assert through_masks.best_iteration == through_lightgbm.best_iteration


@pytest.mark.parametrize("kind", list(TASKS))
def test_many_rows_are_predicted_through_the_models_masks_as_lightgbm_predicts_them(splits, kind, monkeypatch):
    from trails.families import gbdt_model

    train, valid = splits[kind]
    task = TASKS[kind]
    trainable = GBDT.new_trial(CONFIG, N_IDS, N_FIELDS, 0, SETTINGS, seed=6, task=task)
    GBDT.train(trainable, train, 3, SETTINGS, watch=valid)
    model = trainable.model
    matrix = feature_matrix(train.ids, train.values, model.feature_map)
    lightgbms = trainable.booster.predict(matrix, num_iteration=model.num_iteration)
    monkeypatch.setattr(gbdt_model, "MASKS_MIN_ROWS", 10)
    np.testing.assert_allclose(raw_predictions(model, train.ids, train.values), lightgbms, rtol=0, atol=1e-9)
    assert model.masked() is not None and model.masked() is model.masked()  # built once
    GBDT.train(trainable, train, 1, SETTINGS)  # the booster trains on: the masks follow it
    unwatched = gbdt_model.GbdtModel(trainable.booster, model.feature_map)
    np.testing.assert_allclose(raw_predictions(unwatched, train.ids, train.values),
                               trainable.booster.predict(matrix), rtol=0, atol=1e-9)
