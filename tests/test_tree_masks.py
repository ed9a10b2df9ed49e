"""A LightGBM forest as bit masks (trails.serving.tree_masks): the same predictions as LightGBM's
own, row by row and in batches, for every task, categorical and numeric splits, NaN, zero as
missing, out-of-range and fractional category codes, trees wider than 32 leaves and stumps; a
forest it cannot express is left to LightGBM; TreesForward switches to the masks after a number
of rows without changing an answer."""

import lightgbm
import numpy as np
import pytest

from trails.serving import trees_forward
from trails.serving.tree_format import FeatureMap, as_outputs, feature_matrix
from trails.serving.tree_masks import MaskedForest
from trails.serving.trees_forward import TreesForward
from trails.task import BINARY_01, Task

N_ROWS = 3000
ZERO = np.float32(1e-35)  # LightGBM's kZeroThreshold: a dense value of |x| <= this reaches the trees as 0.0
ABOVE_ZERO = np.nextafter(ZERO, np.float32(1))


def _data(seed=0):
    """Two categorical columns (codes 0..11 and 0..39) and two numeric ones with NaN and zeros."""
    generator = np.random.default_rng(seed)
    x = np.column_stack([generator.integers(0, 12, N_ROWS), generator.integers(0, 40, N_ROWS),
                         generator.normal(size=N_ROWS), generator.normal(size=N_ROWS)]).astype(np.float32)
    x[generator.random(N_ROWS) < 0.1, 2] = np.nan
    x[generator.random(N_ROWS) < 0.1, 3] = 0.0
    x[generator.random(N_ROWS) < 0.05, 0] = np.nan
    signal = (np.nan_to_num(x[:, 0]) % 3) + (x[:, 1] % 5) * 0.5 + np.nan_to_num(x[:, 2]) + (x[:, 3] > 0.3)
    return x, signal


def _train(objective, labels, x, rounds=40, **params):
    base = {"objective": objective, "num_leaves": 15, "learning_rate": 0.2, "min_data_in_leaf": 5,
            "min_data_per_group": 5, "cat_smooth": 1, "verbose": -1, "num_threads": 1, "seed": 0}
    dataset = lightgbm.Dataset(x, labels, categorical_feature=[0, 1], free_raw_data=False)
    return lightgbm.train({**base, **params}, dataset, num_boost_round=rounds)


def _probe_rows(x):
    """The training rows, then rows LightGBM never saw: NaN everywhere, codes out of range,
    negative and fractional, zeros, values at and just past LightGBM's zero threshold, extremes."""
    extra = np.array([[np.nan] * 4, [-1, -3, 0.0, -0.0], [12, 400, 1e30, -1e30], [2.5, 7.9, 1e-36, np.nan],
                      [-0.5, 0.99, -1e-36, 0.0], [1e9, 3, 0.3, 0.3], [1, 2, ZERO, -ZERO], [0, 0, -ZERO, ABOVE_ZERO],
                      [3, 1, ABOVE_ZERO, -ABOVE_ZERO]], dtype=np.float32)
    return np.vstack([x, extra])


def _booster_cases():
    x, signal = _data()
    yield "binary", x, _train("binary", (signal > np.median(signal)).astype(int), x)
    yield "regression", x, _train("regression", signal, x)
    yield "regression_zero_missing", x, _train("regression", signal, x, zero_as_missing=True)
    yield "multiclass", x, _train("multiclass", np.digitize(signal, np.quantile(signal, [0.33, 0.66])), x,
                                  num_class=3)
    yield "wide_trees", x, _train("binary", (signal > np.median(signal)).astype(int), x, num_leaves=63,
                                  min_data_in_leaf=2, rounds=10)


@pytest.mark.parametrize("case, x, booster", list(_booster_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_masks_predict_what_lightgbm_predicts(case, x, booster):
    forest = MaskedForest.build(booster, booster.model_to_string(), x.shape[1])
    assert forest is not None
    rows = _probe_rows(x)
    expected = booster.predict(rows)
    np.testing.assert_allclose(forest.predict(rows), expected, rtol=0, atol=1e-9)
    one_by_one = np.array([forest.row_predict(row.tolist()) for row in rows])
    np.testing.assert_allclose(one_by_one.reshape(expected.shape), expected, rtol=0, atol=1e-9)
    assert forest.table.dtype == (np.uint64 if case == "wide_trees" else np.uint32)


def test_stumps_and_a_forest_of_one_tree():
    x, signal = _data()
    stumps = _train("regression", signal, x, rounds=3, min_data_in_leaf=N_ROWS)  # no split is allowed
    forest = MaskedForest.build(stumps, stumps.model_to_string(), x.shape[1])
    np.testing.assert_allclose(forest.predict(x[:50]), stumps.predict(x[:50]), atol=1e-12)
    assert forest.row_predict(x[0].tolist())[0] == pytest.approx(stumps.predict(x[:1])[0], abs=1e-12)


@pytest.mark.parametrize("params", [{"objective": "huber"}, {"objective": "binary", "num_leaves": 100,
                                                                 "min_data_in_leaf": 1}])
def test_a_forest_the_masks_cannot_express_is_left_to_lightgbm(params):
    x, signal = _data()
    labels = (signal > np.median(signal)).astype(int) if params["objective"] == "binary" else signal
    booster = _train(params.pop("objective"), labels, x, rounds=5, **params)
    if booster.num_trees() and max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) <= 64 \
            and booster.dump_model()["objective"].startswith("binary"):
        pytest.skip("LightGBM grew no tree wider than 64 leaves on these rows")
    assert MaskedForest.build(booster, booster.model_to_string(), x.shape[1]) is None


def test_a_forest_that_disagrees_with_its_booster_is_not_used():
    x, signal = _data()
    booster = _train("regression", signal, x, rounds=5)
    other = _train("regression", -signal, x, rounds=5)  # masks of one, checked against the other
    assert MaskedForest.build(booster, other.model_to_string(), x.shape[1]) is None


@pytest.mark.parametrize("task", [BINARY_01, Task("regression", mean=3.0, std=2.0)], ids=lambda t: t.kind)
def test_trees_forward_switches_to_the_masks_without_changing_an_answer(monkeypatch, task):
    monkeypatch.setattr(trees_forward, "MASKS_AFTER_ROWS", 100)
    x, signal = _data()
    labels = (signal > np.median(signal)).astype(int) if task.kind == "binary" else signal
    booster = _train("binary" if task.kind == "binary" else "regression", labels, x)
    n_ids = 60
    feature_map = FeatureMap(n_ids, (False, False, True, True), (0, 0, 0, 0))
    forward = TreesForward(booster.model_to_string(), feature_map, task)
    ids = np.column_stack([np.nan_to_num(x[:, 0], nan=n_ids - 8).astype(np.int64), x[:, 1].astype(np.int64),
                           np.where(np.isnan(x[:, 2]), n_ids - 6, 2), np.full(N_ROWS, 3)])
    values = np.column_stack([np.ones(N_ROWS), np.ones(N_ROWS), np.nan_to_num(x[:, 2], nan=1.0), x[:, 3]])
    values = values.astype(np.float32)
    lightgbms = as_outputs(booster.predict(feature_matrix(ids, values, feature_map)), task)
    rows = [forward.row_outputs(ids[i].tolist(), values[i].tolist()) for i in range(150)]
    assert forward.masked  # built after 100 rows; LightGBM answered before
    np.testing.assert_allclose(np.array(rows), lightgbms[:150], rtol=0, atol=1e-9)
    np.testing.assert_allclose(forward.outputs(ids, values), lightgbms, rtol=0, atol=1e-9)


def test_a_split_of_missing_values_from_the_rest_at_an_infinite_threshold():
    """LightGBM separates NaN from every number with a threshold of +inf (and zero from the
    positives at 1e-35): both are read as LightGBM reads them."""
    generator = np.random.default_rng(0)
    x = generator.normal(size=(N_ROWS, 2)).astype(np.float32)
    missing = generator.random(N_ROWS) < 0.3
    x[missing, 0] = np.nan
    x[generator.random(N_ROWS) < 0.1, 0] = 0.0
    labels = missing * 2.0 + (x[:, 0] == 0) + x[:, 1] * 0.1
    booster = lightgbm.train({"objective": "regression", "verbose": -1, "num_leaves": 4, "num_threads": 1},
                             lightgbm.Dataset(x, labels), num_boost_round=5)
    assert "threshold=inf" in booster.model_to_string()
    forest = MaskedForest.build(booster, booster.model_to_string(), 2)
    rows = np.vstack([x, [[np.inf, 0], [-np.inf, 0], [3e38, 1], [np.nan, np.nan], [1e-36, 0], [ZERO, 0], [-ZERO, 1],
                          [ABOVE_ZERO, 0], [-ABOVE_ZERO, 0]]]).astype(np.float32)
    np.testing.assert_allclose(forest.predict(rows), booster.predict(rows), rtol=0, atol=1e-9)
    np.testing.assert_allclose([forest.row_predict(r.tolist())[0] for r in rows], booster.predict(rows), atol=1e-9)
