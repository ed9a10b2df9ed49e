"""Warm starts (trails.selection.warm): a layout extended without renumbering, weights resumed
through the id map (MLP and trees), and model_selection(..., warm_start) against the real
cluster — what it reuses, what it says, and when it falls back to a cold start."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from trails.data.layout import Field, Layout
from trails.data.layout_extend import CannotExtend, IdMap, added_values, extend_layout, id_map
from trails.families import get_family
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import TrainingSettings
from trails.task import BINARY_01, Task


def _layout(colours, sizes=("1", "2"), rows=100, classes=("0", "1")) -> Layout:
    """Two categorical fields and a numeric one, laid out as infer_layout lays them out."""
    fields, next_id = [], 0
    for name, values in (("colour", list(colours)), ("size", list(sizes))):
        fields.append(Field(name, "categorical", "text", next_id, len(values), values=values))
        next_id += len(values)
    fields.append(Field("weight", "numeric", "double precision", next_id, 1, mean=3.0, std=2.0))
    next_id += 1
    for fld in fields:
        fld.missing_id, fld.unknown_id = next_id, next_id + 1
        next_id += 2
    task = Task("binary", list(classes), metric="roc_auc")
    return Layout("label", task, fields, {"id": "key"}, rows)


def _columns(layout, rows):
    columns = {f"f{i}": [row[i] for row in rows] for i in range(layout.n_fields)}
    columns["label"] = ["1"] * len(rows)
    return columns


def test_extension_keeps_every_old_id_and_moves_missing_and_unknown_last():
    old = _layout(["blue", "red"])
    old.layout_id = 7
    grown = extend_layout(old, _layout(["blue", "green", "red"], sizes=("1", "2", "3"), rows=150))
    assert grown.train_rows == 150 and grown.layout_id is None
    assert grown.n_ids == old.n_ids + 2 and added_values(old, grown) == 2
    colour, size, weight = grown.fields
    assert (colour.added_values, colour.added_ids, size.added_values, size.added_ids) == (["green"], [5], ["3"], [6])
    assert [f.missing_id for f in grown.fields] == [7, 9, 11] and weight.first_id == 4
    rows = [("red", "2", 5.0), ("green", "3", None), ("purple", None, 1.0)]
    ids, values, _ = grown.encode(_columns(grown, rows))
    assert ids.tolist() == [[1, 3, 4], [5, 6, 11], [8, 9, 4]]
    old_ids, _, _ = old.encode(_columns(old, rows[:1]))
    assert old_ids.tolist() == [[1, 3, 4]]  # the value ids an old model learnt mean the same
    assert values[0, 2] == pytest.approx(1.0)  # the old mean and std: (5 - 3) / 2
    mapping = id_map(old, grown)
    pairs = dict(zip(*(a.tolist() for a in mapping.pairs())))
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 7, 6: 8, 7: 9, 8: 10, 9: 11, 10: 12}
    assert IdMap.from_json(json.loads(json.dumps(mapping.to_json()))) == mapping
    again = Layout.from_json(json.loads(json.dumps(grown.to_json())))  # stored and read back
    assert again.encode(_columns(again, rows))[0].tolist() == ids.tolist()
    assert extend_layout(grown, _layout(["blue", "green", "red", "white"])).fields[0].added_ids == [5, 7]


@pytest.mark.parametrize("change, message", [
    (lambda t: dataclasses.replace(t, fields=t.fields + [dataclasses.replace(t.fields[2], name="height")]),
     'new column "height"'),
    (lambda t: dataclasses.replace(t, fields=t.fields[:2]), 'column "weight" is gone'),
    (lambda t: dataclasses.replace(t, fields=[dataclasses.replace(t.fields[0], sql_type="integer")] + t.fields[1:]),
     'column "colour" is integer now'),
    (lambda t: dataclasses.replace(t, task=Task("binary", ["0", "2"], metric="roc_auc")), "classes changed (2)"),
])
def test_a_table_that_changed_shape_cannot_be_extended(change, message):
    with pytest.raises(CannotExtend, match=message.replace("(", r"\(").replace(")", r"\)")):
        extend_layout(_layout(["blue", "red"]), change(_layout(["blue", "red"])))


def _rows(n, n_ids, n_fields, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, n_ids, (n, n_fields), generator=generator)
    noise = torch.rand(n, generator=generator) < 0.3  # a label no few trees fit
    labels = ((ids[:, 0] + ids[:, 1]) % 2).to(torch.int64) ^ noise.to(torch.int64)
    return SplitTensors(ids, torch.ones(n, n_fields), labels)


def test_a_resumed_mlp_predicts_as_the_stored_one_on_rows_of_old_values():
    old, settings, mlp = _layout(["blue", "red"]), TrainingSettings.from_config(), get_family("mlp")
    grown = extend_layout(old, _layout(["blue", "green", "red"], sizes=("1", "2", "3")))
    trial = mlp.new_trial((8, 4), old.n_ids, old.n_fields, 100, settings, seed=1)
    mlp.train(trial, _rows(256, old.n_ids, 3), 1, settings)
    stored = mlp.to_bytes(trial.model)
    resumed = mlp.resume_trial((8, 4), stored, id_map(old, grown), grown.n_ids, grown.n_fields, 100, settings, seed=2)
    assert resumed.epochs_trained == 0
    rows = [("red", "1", 2.0), ("blue", None, None), ("pink", "2", 7.0)]
    before = mlp.predict(mlp.from_bytes((8, 4), _hyper(old, settings), 2, stored), BINARY_01,
                         *(torch.as_tensor(a) for a in old.encode(_columns(old, rows))[:2]))
    resumed.model.eval()
    after = mlp.predict(resumed.model, BINARY_01, *(torch.as_tensor(a) for a in grown.encode(_columns(grown, rows))[:2]))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="not those of 16-4"):
        mlp.resume_trial((16, 4), stored, id_map(old, grown), grown.n_ids, grown.n_fields, 100, settings)


def _hyper(layout, settings):
    from trails.families.hyper import ModelHyper

    return ModelHyper(n_ids=layout.n_ids, n_fields=layout.n_fields, n_outputs=2,
                      embedding_dim=settings.embedding_dim, batch_norm=settings.batch_norm)


def test_resumed_trees_continue_the_stored_boosting():
    old, settings, trees = _layout(["blue", "red"]), TrainingSettings.from_config(), get_family("gbdt")
    grown = extend_layout(old, _layout(["blue", "green", "red"]))
    config = trees.portfolio(1)[0]
    trainable = trees.new_trial(config, old.n_ids, old.n_fields, 10, settings, seed=0)
    old_rows = _rows(400, old.n_ids - 6, 3)  # value ids only (missing and unknown are the last 6)
    trees.train(trainable, old_rows, 1, settings)
    stored = trees.to_bytes(trainable.model)
    resumed = trees.resume_trial(config, stored, id_map(old, grown), grown.n_ids, grown.n_fields, 10, settings)
    grown_rows = _rows(400, grown.n_ids - 6, 3, seed=1)
    trees.train(resumed, grown_rows, 1, settings)
    assert resumed.resumed and resumed.model.booster.num_trees() > trainable.model.booster.num_trees()


GROW = ("INSERT INTO synth SELECT i, i % 7, chr(65 + i % 8), ((i * 37) % 101) / 10.0,"
        " CASE WHEN (i % 7) + (i % 5) > 5 THEN 1 ELSE 0 END FROM generate_series(12001, 15000) AS i")
SELECT = ("SELECT model_id, run_id FROM model_selection('synth', NULL, max_trials => 3, refinement => 'backend'"
          ", warm_start => %s)")


def _warm(sql, run_id):
    return sql("SELECT warm_start FROM trails.runs WHERE run_id = %s", run_id)[0][0]


def test_a_warm_start_reuses_scores_extends_the_layout_and_resumes_the_deployed_model(sql, postgresql):
    from test_tasks import SYNTHETIC

    sql(SYNTHETIC)
    first, first_run = sql(SELECT, True)[0]
    assert _warm(sql, first_run)["cold"][0].startswith('no model of synth predicts "label" of synth')
    first_arch, first_layout = sql("SELECT arch, layout_id FROM trails.models WHERE model_id = %s", first)[0]
    sql(GROW)  # 3,000 rows, three new values of b
    notices = []
    postgresql.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    second, second_run = sql(SELECT, True)[0]
    warm = _warm(sql, second_run)
    assert (warm["model_id"], warm["deployed"], warm["layout"], warm["added_values"]) == (first, True, "extended", 3)
    assert warm["scores_reused"] > 0 and warm["cold"] == []
    layout, extends = sql("SELECT l.layout_id, l.extends_layout FROM trails.layouts l JOIN trails.models m"
                          " USING (layout_id) WHERE m.model_id = %s", second)[0]
    assert extends == first_layout
    assert any(f"warm start from model {first} (deployed): layout {layout} extends its layout" in n for n in notices)
    assert any("TFMEM scores reused from trails.tfmem_scores" in n for n in notices)
    assert warm["resumed"] == f"{first_arch}@model{first}"
    assert any(f"warm start: {first_arch}@model{first} resumes from model {first}'s weights" in n for n in notices)
    new_values = sql("SELECT trails.predict(%s, s) FROM synth s WHERE b IN ('F', 'G', 'H') LIMIT 5", second)
    assert len(new_values) == 5 and all(0.0 <= p <= 1.0 for (p,) in new_values)

    _, cold_run = sql(SELECT, False)[0]
    assert _warm(sql, cold_run) is None
    assert sql("SELECT l.extends_layout FROM trails.runs r JOIN trails.layouts l USING (layout_id)"
               " WHERE r.run_id = %s", cold_run)[0][0] is None

    sql("ALTER TABLE synth ADD COLUMN d int")
    sql("UPDATE synth SET d = id % 3")
    notices.clear()
    _, fallback_run = sql(SELECT, True)[0]
    warm = _warm(sql, fallback_run)
    assert warm["layout"] == "inferred" and warm["resumed"] is None
    assert any('cannot describe the table now: new column "d"' in reason for reason in warm["cold"])
    assert any(n.startswith("cold start: the layout of model") for n in notices)


def test_warm_start_null_is_refused(sql):
    from test_tasks import SYNTHETIC
    import psycopg

    sql(SYNTHETIC)
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT * FROM model_selection('synth', 10, warm_start => NULL)")
    assert "warm_start must not be NULL" in error.value.diag.message_primary and error.value.diag.message_hint


def test_a_warm_start_travels_to_the_refinement_service(sql, pg_dsn):
    import conftest
    from test_tasks import SYNTHETIC

    sql(SYNTHETIC)
    first = sql(SELECT, True)[0][0]
    sql(GROW)
    with conftest.refinement_service_process(pg_dsn):
        run_id = sql(SELECT.replace("'backend'", "'service'"), True)[0][1]
    refinement, warm = sql("SELECT refinement, warm_start FROM trails.runs WHERE run_id = %s", run_id)[0]
    assert refinement == "service"
    assert (warm["model_id"], warm["layout"]) == (first, "extended")
    assert warm["resumed"] == sql("SELECT arch FROM trails.models WHERE model_id = %s", first)[0][0] + f"@model{first}"


def test_a_resumed_candidate_is_another_candidate_than_its_fresh_copy():
    from trails.families import parse_candidate

    fresh = parse_candidate("gbdt:leaves=31,lr=0.3,min_child=20,ff=0.9,bf=1,l2=1,cat=10")
    resumed = parse_candidate(fresh.text + "@model12")
    assert resumed != fresh and resumed.resumed_from == 12 and resumed.config == fresh.config
    assert resumed.text == fresh.text + "@model12" and resumed.stored_text == fresh.text
    assert parse_candidate(resumed.text) == resumed and parse_candidate("8-16@model3").stored_text == "8-16"
    with pytest.raises(Exception, match="names no stored model"):
        parse_candidate("8-16@modelx")
