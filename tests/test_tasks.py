"""Every task end to end against the real cluster: multiclass (frappe's weather), regression
(a target built from frappe's fields plus noise), a budget in trials with a bound on
parameters, predict that refuses rows it cannot read, the exported model (ONNX run with
onnxruntime, the 'torch_export' format's torch.export program) against trails.predict, refit, and
errors without tracebacks."""

import io
import warnings

import numpy as np
import psycopg
import pytest
import torch
from test_model_selection import refinement_service  # noqa: F401  (a fixture)

BUDGET = 25.0


def _views(sql, name, select):
    for split in ("train", "valid", "test"):
        sql(f"CREATE VIEW {name}_{split} AS {select.format(split=split)}")


def _select(sql, query, *args):
    """The row of a model_selection call as a dict (column names from the cursor)."""
    columns = ["run_id", "best_arch", "valid_auc", "test_auc", "n_scored", "k_refined", "u", "elapsed_s",
               "model_id", "task", "metric", "valid_score", "test_score", "params"]
    row = sql(f"SELECT {', '.join(columns)} FROM {query}", *args)[0]
    return dict(zip(columns, row))


SYNTHETIC = """CREATE TABLE synth AS
SELECT i AS id, i % 7 AS a, chr(65 + i % 5) AS b, ((i * 37) % 101) / 10.0 AS c,
       CASE WHEN (i % 7) + (i % 5) > 5 THEN 1 ELSE 0 END AS label
FROM generate_series(1, 12000) AS i"""


def _trials_model(sql, trials=9, max_params=5000, families="auto"):
    sql(SYNTHETIC)
    return _select(sql, "model_selection('synth', NULL, max_trials => %s, max_params => %s,"
                        " families => %s, refinement => 'backend')", trials, max_params, families)


def test_multiclass_beats_the_majority_class(sql):
    _views(sql, "fw", "SELECT id, user_id, item_id, daytime, weekday, isweekend, homework, cost, country,"
                      " city, weather::text AS weather FROM frappe_{split}")
    row = _select(sql, "model_selection('fw', %s, label => 'weather', refinement => 'backend')", BUDGET)
    assert (row["task"], row["metric"]) == ("multiclass", "accuracy")
    assert row["valid_auc"] is None and row["test_auc"] is None
    counts = dict(sql("SELECT weather, count(*) FROM fw_test WHERE weather <> 'sleet' GROUP BY 1"))
    majority = max(counts.values()) / sum(counts.values())
    assert row["test_score"] > majority + 0.05, (row, majority)
    model = row["model_id"]
    classes = sql("SELECT layout#>'{task,classes}' FROM trails.layouts l JOIN trails.models m"
                  " USING (layout_id) WHERE m.model_id = %s", model)[0][0]
    assert "sleet" not in classes and len(classes) == 8  # one train row: too rare, left out
    label, proba = sql("SELECT trails.predict_label(%s, t), trails.predict_proba(%s, t) FROM fw_test t"
                       " ORDER BY id LIMIT 1", model, model)[0]
    assert set(proba) == set(classes) and sum(proba.values()) == pytest.approx(1.0)
    assert label == max(proba, key=proba.get)
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT trails.predict(%s, t) FROM fw_test t LIMIT 1", model)
    assert "multiclass" in error.value.diag.message_primary
    assert "predict_label" in error.value.diag.message_hint
    scored = sql("SELECT id, score, label, proba FROM trails.predict_table(%s, 'fw_test', with_proba => true) ORDER BY id LIMIT 1", model)
    assert scored[0][1] is None and scored[0][2] == label
    assert scored[0][3] == pytest.approx(proba, abs=1e-5)  # batch vs one row: float32 round-off


def test_regression_reaches_r2(sql):
    _views(sql, "reg", "SELECT id, user_id, item_id, daytime, weekday, isweekend, homework, cost, weather,"
                       " country, city, (abs(hashtext(item_id::text)) % 10 + abs(hashtext(user_id::text)) % 5"
                       " + (abs(hashtext(id::text)) % 1000) / 500.0)::float8 AS target FROM frappe_{split}")
    row = _select(sql, "model_selection('reg', %s, label => 'target', metric => 'r2', refinement => 'backend')",
                  BUDGET)
    assert (row["task"], row["metric"]) == ("regression", "r2")
    assert row["test_score"] >= 0.5, row
    predicted, actual = sql("SELECT trails.predict(%s, t), target FROM reg_test t ORDER BY id LIMIT 1",
                            row["model_id"])[0]
    assert 0 <= actual <= 16 and -5 < predicted < 25  # a value in the label's units
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT trails.predict_label(%s, t) FROM reg_test t LIMIT 1", row["model_id"])
    assert "regression" in error.value.diag.message_primary


def test_trials_budget_and_params_bound(sql):
    row = _trials_model(sql)
    assert row["k_refined"] == 9 and row["params"] <= 5000
    rungs = sql("SELECT phases#>'{refinement,rungs}', phases#>'{refinement,schedule}' FROM trails.runs"
                " WHERE run_id = %s", row["run_id"])[0]
    assert len({r["arch"] for r in rungs[0] if r["rung"] == 0}) == 9  # exactly 9 candidates refined
    assert [r["total_epochs"] for r in rungs[1]] == [3, 9, 27]  # the last rung reaches max_epochs
    assert row["test_auc"] > 0.9  # the label is a function of a and b
    params = sql("SELECT params FROM trails.models WHERE model_id = %s", row["model_id"])[0][0]
    assert params == row["params"]


def _encode(layout, rows):
    """Rows (dicts of column → PostgreSQL text / float) → ids, values, as model_layout says."""
    fields = layout["fields"]
    ids = np.empty((len(rows), len(fields)), dtype=np.int64)
    values = np.ones((len(rows), len(fields)), dtype=np.float32)
    for i, field in enumerate(fields):
        for r, row in enumerate(rows):
            value = row[field["name"]]
            if field["kind"] == "numeric":
                if value is None:
                    ids[r, i] = field["missing_id"]
                else:
                    ids[r, i] = field["first_id"]
                    values[r, i] = (value - field["mean"]) / field["std"]
            elif value is None or value == "":
                ids[r, i] = field["missing_id"]
            elif value in field["values"]:
                ids[r, i] = field["first_id"] + field["values"].index(value)
            else:
                ids[r, i] = field["unknown_id"]
    return ids, values


def test_exported_model_matches_predict(sql):
    import onnxruntime

    model = _trials_model(sql, families="mlp")["model_id"]  # torch_export is the MLP's (trees: test_families_sql)
    layout = sql("SELECT trails.model_layout(%s)", model)[0][0]
    assert [f["name"] for f in layout["fields"]] == ["a", "b", "c"] and layout["task"]["kind"] == "binary"
    rows = sql("SELECT id, a::text, b, c::float8 FROM synth ORDER BY id LIMIT 1000")
    ids, values = _encode(layout, [{"a": a, "b": b, "c": c} for _, a, b, c in rows])
    expected = dict(sql("SELECT id, score FROM trails.predict_table(%s, 'synth')", model))
    expected = np.array([expected[row[0]] for row in rows])
    one_by_one = sql("SELECT trails.predict(%s, s) FROM synth s ORDER BY id LIMIT 5", model)
    np.testing.assert_allclose([v for (v,) in one_by_one], expected[:5], atol=1e-5)

    onnx_bytes = bytes(sql("SELECT trails.export_model(%s)", model)[0][0])
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (onnx_scores,) = session.run(None, {"ids": ids, "values": values})
    assert onnx_scores.shape == (1000,)
    np.testing.assert_allclose(onnx_scores, expected, atol=1e-5)

    script_bytes = bytes(sql("SELECT trails.export_model(%s, 'torch_export')", model)[0][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # torch.jit.load warns: not used
        warnings.simplefilter("error", FutureWarning)
        scripted = torch.export.load(io.BytesIO(script_bytes)).module()
    with torch.no_grad():
        np.testing.assert_allclose(scripted(torch.from_numpy(ids), torch.from_numpy(values)).numpy(),
                                   expected, atol=1e-5)


def test_predict_refuses_rows_it_cannot_read(sql):
    model = _trials_model(sql, trials=2)["model_id"]
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT trails.predict(%s, t) FROM (SELECT 1 AS a, 'x'::text AS other) t", model)
    assert "lacks 2 of the 3 columns" in error.value.diag.message_primary
    assert "b, c" in error.value.diag.message_primary
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT trails.predict(%s, t) FROM (SELECT 1 AS a, 'B'::text AS b, 'many'::text AS c) t", model)
    assert "c (a number expected, got str" in error.value.diag.message_primary
    sql("CREATE TABLE other (id int, a int, b text)")
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT * FROM trails.predict_table(%s, 'other')", model)
    assert "lacks 1 of the 3 columns model" in error.value.diag.message_primary
    sql("CREATE TABLE texts (a int, b text, c text)")
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT * FROM trails.predict_table(%s, 'texts')", model)
    assert "c (text, the model reads numeric)" in error.value.diag.message_primary
    # a NULL row is NULL; a row of the right columns with NULLs is scored
    assert sql("SELECT trails.predict(%s, NULL::synth)", model) == [(None,)]
    (score,), = sql("SELECT trails.predict(%s, t) FROM (SELECT NULL::int AS a, NULL::text AS b,"
                    " NULL::numeric AS c) t", model)
    assert 0 <= score <= 1


def test_refit_trains_on_train_and_valid(sql):
    row = _trials_model(sql, trials=3, families="mlp")  # which family wins here depends on timings
    new_id, epochs, train_rows, metric, test_score, elapsed = sql(
        "SELECT * FROM trails.refit(%s, 60)", row["model_id"])[0]
    source_epochs, source_family = sql("SELECT (hyper->>'epochs')::int, hyper->>'family' FROM trails.models"
                                       " WHERE model_id = %s", row["model_id"])[0]
    assert epochs == source_epochs and metric == "roc_auc" and source_family == "mlp"
    splits = dict(sql("SELECT split, rows FROM (VALUES ('train'), ('valid')) s(split),"
                      " LATERAL trails.read_batch_stats('synth', NULL, split) r"))
    assert train_rows == splits["train"] + splits["valid"]
    refit_of, arch, hyper = sql("SELECT refit_of, arch, hyper FROM trails.models WHERE model_id = %s", new_id)[0]
    assert refit_of == row["model_id"] and arch == row["best_arch"]
    assert (hyper["family"], hyper["epochs"], hyper["refit_rows"]) == ("mlp", epochs, train_rows)
    assert test_score > 0.9 and elapsed < 60
    assert sql("SELECT count(*) FROM trails.runs")[0][0] == 1  # a refit is a model, not a run


def test_errors_carry_sqlstate_detail_hint_and_no_traceback(sql):
    sql(SYNTHETIC)
    sql("ALTER TABLE synth ADD COLUMN label_copy int")
    sql("UPDATE synth SET label_copy = label")
    for query, state in (("SELECT * FROM trails.describe('synth')", "22023"),
                         ("SELECT * FROM model_selection('synth', 30)", "22023"),
                         ("SELECT * FROM model_selection('synth', 30, task => 'regresion')", "22023"),
                         ("SELECT * FROM trails.export_model(1, 'pmml')", "22023")):
        with pytest.raises(psycopg.Error) as error:
            sql(query)
        diag = error.value.diag
        assert diag.sqlstate == state, (query, diag.message_primary)
        assert diag.message_primary.startswith("trails: ") and diag.message_hint
        assert "Traceback" not in (diag.context or "") and "PL/Python" not in (diag.context or "")
    assert sql("SELECT count(*) FROM trails.runs")[0][0] == 0
    assert sql("SELECT count(*) FROM trails.layouts")[0][0] == 0  # the failed calls stored no layout


def test_multiclass_through_the_refinement_service(sql, refinement_service):
    sql("CREATE TABLE colours AS SELECT i AS id, i % 7 AS a, chr(65 + i % 5) AS b,"
        " (ARRAY['red', 'green', 'blue'])[1 + (i % 7 + i % 5) % 3] AS colour FROM generate_series(1, 6000) AS i")
    row = _select(sql, "model_selection('colours', NULL, label => 'colour', max_trials => 3,"
                       " metric => 'macro_f1', refinement => 'service')")
    assert (row["task"], row["metric"], row["k_refined"]) == ("multiclass", "macro_f1", 3)
    assert row["test_score"] > 0.9  # the colour is a function of a and b
    refinement, = sql("SELECT refinement FROM trails.runs WHERE run_id = %s", row["run_id"])[0]
    assert refinement == "service"
    labels = sql("SELECT trails.predict_label(%s, c), colour FROM colours c ORDER BY id LIMIT 50", row["model_id"])
    assert sum(predicted == actual for predicted, actual in labels) >= 45


def test_binary_with_a_lower_is_better_metric(sql):
    sql(SYNTHETIC)
    row = _select(sql, "model_selection('synth', NULL, max_trials => 3, metric => 'log_loss',"
                       " refinement => 'backend')")
    assert (row["task"], row["metric"]) == ("binary", "log_loss")
    assert 0 <= row["test_score"] < 0.3  # a low loss: the label is a function of a and b
    assert row["valid_auc"] > 0.9 and row["test_auc"] > 0.9  # AUCs still reported for binary
    rungs = sql("SELECT phases#>'{refinement,rungs}' FROM trails.runs WHERE run_id = %s", row["run_id"])[0][0]
    best = min(r["valid_score"] for r in rungs)
    assert row["best_arch"] == next(r["arch"] for r in rungs if r["valid_score"] == best)  # lowest loss won
