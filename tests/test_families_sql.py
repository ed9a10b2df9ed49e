"""Gradient-boosted trees beside the MLPs, end to end against the real cluster: a trees model
selected, stored, predicted with, exported (ONNX run with onnxruntime against trails.predict),
described and refit; a race of both families recorded in the row and in trails.runs."""

import numpy as np
import psycopg
import pytest
from test_tasks import SYNTHETIC, _encode

COLUMNS = ["run_id", "best_arch", "valid_auc", "test_auc", "k_refined", "model_id", "task", "metric",
           "valid_score", "test_score", "params", "family", "family_scores"]


def _select(sql, query, *args) -> dict:
    row = sql(f"SELECT {', '.join(COLUMNS)} FROM {query}", *args)[0]
    return dict(zip(COLUMNS, row))


@pytest.fixture
def trees_model(sql):
    sql(SYNTHETIC)
    return _select(sql, "model_selection('synth', NULL, max_trials => 3, families => 'gbdt',"
                        " refinement => 'backend')")


def test_a_trees_model_is_selected_stored_and_predicts(sql, trees_model):
    row = trees_model
    assert row["family"] == "gbdt" and row["best_arch"].startswith("gbdt:leaves=")
    assert row["k_refined"] == 3 and set(row["family_scores"]) == {"gbdt"}
    assert row["test_auc"] > 0.9 and row["params"] > 0  # the label is a function of a and b
    hyper, arch, params = sql("SELECT hyper, arch, params FROM trails.models WHERE model_id = %s",
                              row["model_id"])[0]
    assert hyper["family"] == "gbdt" and arch == row["best_arch"] and params == row["params"]
    assert sql("SELECT families, family FROM trails.runs WHERE run_id = %s", row["run_id"])[0] == ("gbdt", "gbdt")
    one = sql("SELECT trails.predict(%s, s) FROM synth s ORDER BY id LIMIT 5", row["model_id"])
    table = dict(sql("SELECT id, score FROM trails.predict_table(%s, 'synth')", row["model_id"]))
    ids = [i for (i,) in sql("SELECT id FROM synth ORDER BY id LIMIT 5")]
    np.testing.assert_allclose([v for (v,) in one], [table[i] for i in ids], atol=1e-6)
    label = sql("SELECT trails.predict_label(%s, s) FROM synth s ORDER BY id LIMIT 1", row["model_id"])[0][0]
    assert label in ("0", "1")


def test_a_trees_model_exports_as_onnx_matching_predict(sql, trees_model):
    import onnxruntime

    model = trees_model["model_id"]
    layout = sql("SELECT trails.model_layout(%s)", model)[0][0]
    rows = sql("SELECT id, a::text, b, c::float8 FROM synth ORDER BY id LIMIT 1000")
    ids, values = _encode(layout, [{"a": a, "b": b, "c": c} for _, a, b, c in rows])
    expected = dict(sql("SELECT id, score FROM trails.predict_table(%s, 'synth')", model))
    expected = np.array([expected[row[0]] for row in rows])
    session = onnxruntime.InferenceSession(bytes(sql("SELECT trails.export_model(%s)", model)[0][0]),
                                           providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"ids": ids, "values": values})
    assert scores.shape == (1000,)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    with pytest.raises(psycopg.Error) as error:  # no torch.export program of trees
        sql("SELECT trails.export_model(%s, 'torch_export')", model)
    assert "cannot export" in error.value.diag.message_primary and "onnx" in error.value.diag.message_hint


def test_a_trees_model_refits_on_train_and_valid(sql, trees_model):
    new_id, epochs, train_rows, metric, test_score, elapsed = sql(
        "SELECT * FROM trails.refit(%s, 60)", trees_model["model_id"])[0]
    hyper, refit_of = sql("SELECT hyper, refit_of FROM trails.models WHERE model_id = %s", new_id)[0]
    assert refit_of == trees_model["model_id"] and hyper["family"] == "gbdt" and hyper["refit_rows"] == train_rows
    assert metric == "roc_auc" and test_score > 0.9 and epochs >= 1


def test_auto_races_both_families_and_records_each_familys_best(sql):
    sql(SYNTHETIC)
    row = _select(sql, "model_selection('synth', NULL, max_trials => 4, refinement => 'backend')")
    assert set(row["family_scores"]) == {"mlp", "gbdt"}
    best = max(row["family_scores"].values())
    assert row["family_scores"][row["family"]] == pytest.approx(best)
    plan, rungs, families = sql("SELECT phases->'plan'->'race', phases#>'{refinement,rungs}', families"
                                " FROM trails.runs WHERE run_id = %s", row["run_id"])[0]
    assert families == "auto" and plan["entrants"] == {"mlp": 2, "gbdt": 2}
    assert plan["reserves"] == 0 and plan["prediction_rows"] == 0  # in trials: no deadline, no time left
    assert {r["family"] for r in rungs if r["rung"] == 0} == {"mlp", "gbdt"}
    # the mlp-only race is TRAILS' race: no trees enter
    mlp_only = _select(sql, "model_selection('synth', NULL, max_trials => 2, families => 'mlp',"
                            " refinement => 'backend')")
    assert mlp_only["family"] == "mlp" and set(mlp_only["family_scores"]) == {"mlp"}


def test_max_params_bounds_a_trees_models_nodes(sql):
    sql(SYNTHETIC)
    row = _select(sql, "model_selection('synth', NULL, max_trials => 2, families => 'gbdt', max_params => 2000,"
                       " refinement => 'backend')")
    assert row["family"] == "gbdt" and 0 < row["params"] <= 2000


def test_served_rows_match_the_training_codes_predictions_and_need_no_torch(sql, pg_dsn, trees_model):
    """trails.predict and predict_table (trails.serving: LightGBM's single-row path, no torch)
    give what the family's own predict gives to 1e-6; a new process scores a row without
    importing torch."""
    import json
    import subprocess
    import sys

    import psycopg2

    from trails.data.row_values import columns_from_rows
    from trails.data.session import PgSession
    from trails.registry import load_model

    model_id = trees_model["model_id"]
    rows = [row for (row,) in sql("SELECT to_jsonb(s) FROM synth s ORDER BY id LIMIT 300")]
    with psycopg2.connect(pg_dsn) as connection:
        stored = load_model(PgSession(connection), model_id)
    ids, values, _ = stored.layout.encode(columns_from_rows(stored.layout, rows))
    expected = stored.predict(ids, values)[:, 1]
    served = [v for (v,) in sql("SELECT trails.predict(%s, s) FROM synth s ORDER BY id LIMIT 300", model_id)]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)
    table = dict(sql("SELECT id, score FROM trails.predict_table(%s, 'synth')", model_id))
    np.testing.assert_allclose([table[row["id"]] for row in rows], expected, rtol=0, atol=1e-6)
    probas = sql("SELECT proba FROM trails.predict_table(%s, 'synth', with_proba => true) ORDER BY id LIMIT 3", model_id)
    assert [p["1"] for (p,) in probas] == pytest.approx(expected[:3], abs=1e-9)
    assert sql("SELECT count(proba) FROM trails.predict_table(%s, 'synth')", model_id)[0][0] == 0  # only when asked
    script = ("import json, sys, psycopg2\n"
              "from trails.data.session import PgSession\nfrom trails.predict import predict_one\n"
              f"value = predict_one(PgSession(psycopg2.connect({pg_dsn!r})), {model_id}, json.loads(sys.argv[1]), 'score')\n"
              "print(json.dumps([value, 'torch' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(rows[0])], capture_output=True, text=True, check=True)
    value, imported_torch = json.loads(done.stdout)
    assert value == pytest.approx(expected[0], abs=1e-6) and not imported_torch


@pytest.mark.parametrize("kind, label", [("multiclass", "(i % 7) % 3"), ("regression", "((i * 37) % 101) / 10.0 + i % 7")])
def test_served_trees_of_every_task_match_the_training_codes_predictions(sql, pg_dsn, kind, label):
    """One row at a time (LightGBM's single-row path for the first rows of a backend, then the
    forest's bit masks: trails.serving.tree_masks) and by table, a multiclass and a regression
    trees model give what the family's own predict gives, on every row."""
    import psycopg2

    from trails.data.row_values import columns_from_rows
    from trails.data.session import PgSession
    from trails.registry import load_model

    sql(f"CREATE TABLE tasks AS SELECT i AS id, i % 7 AS a, chr(65 + i % 5) AS b, ((i * 37) % 101) / 10.0 AS c,"
        f" {label} AS y FROM generate_series(1, 3000) AS i")
    model_id = _select(sql, "model_selection('tasks', NULL, label => 'y', task => %s, max_trials => 2,"
                            " families => 'gbdt', refinement => 'backend')", kind)["model_id"]
    rows = [row for (row,) in sql("SELECT to_jsonb(t) FROM tasks t ORDER BY id")]
    with psycopg2.connect(pg_dsn) as connection:
        stored = load_model(PgSession(connection), model_id)
    ids, values, _ = stored.layout.encode(columns_from_rows(stored.layout, rows))
    expected = stored.predict(ids, values)
    table = {key: (score, label_) for key, score, label_ in
             sql("SELECT id, score, label FROM trails.predict_table(%s, 'tasks')", model_id)}
    if kind == "regression":
        served = [v for (v,) in sql("SELECT trails.predict(%s, t) FROM tasks t ORDER BY id", model_id)]
        np.testing.assert_allclose(served, expected, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose([table[row["id"]][0] for row in rows], expected, rtol=1e-9, atol=1e-6)
        return
    classes = stored.task.classes
    served = sql("SELECT trails.predict_proba(%s, t), trails.predict_label(%s, t) FROM tasks t ORDER BY id",
                 model_id, model_id)
    np.testing.assert_allclose([[proba[c] for c in classes] for proba, _ in served], expected, atol=1e-6)
    assert [label_ for _, label_ in served] == [classes[i] for i in expected.argmax(axis=1)]
    assert [table[row["id"]][1] for row in rows] == [label_ for _, label_ in served]
