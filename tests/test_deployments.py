"""trails.deploy and the deployed model, against the real cluster: each strategy, predict by
dataset, the deployments' history, and every refusal (another dataset's model, nothing to roll
back to, a table that lost a column, a role that may not read the table)."""

import psycopg
import pytest
from test_tasks import SYNTHETIC

DEPLOYMENT = "deployment_id, model_id, strategy, previous_model_id, deployed_by = current_user"


def _models(sql) -> list[int]:
    """Two trees models of synth, selected with different seeds (ids in creation order), not deployed."""
    sql(SYNTHETIC)
    return [sql("SELECT model_id FROM model_selection('synth', NULL, max_trials => 2, families => 'gbdt',"
                " refinement => 'backend', seed => %s, deploy => 'never')", seed)[0][0] for seed in (0, 1)]


def test_strategies_choose_and_the_deployed_model_predicts_by_dataset(sql):
    first, second = _models(sql)
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT trails.predict('synth', s) FROM synth s LIMIT 1")
    assert "no model of synth is deployed" in error.value.diag.message_primary
    assert "trails.deploy('synth'" in error.value.diag.message_hint
    scores = dict(sql("SELECT model_id, test_score FROM trails.models"))
    best = max(scores, key=lambda m: (scores[m], m))
    assert sql(f"SELECT {DEPLOYMENT} FROM trails.deploy('synth')")[0] == (1, best, "best_score", None, True)
    assert sql(f"SELECT {DEPLOYMENT} FROM trails.deploy('synth', %s)", first)[0] == (2, first, "model", best, True)
    assert sql(f"SELECT {DEPLOYMENT} FROM trails.deploy('synth', strategy => 'most_recent')")[0] == \
        (3, second, "most_recent", first, True)
    assert sql(f"SELECT {DEPLOYMENT} FROM trails.deploy('synth', strategy => 'rollback')")[0] == \
        (4, first, "rollback", second, True)
    assert sql("SELECT trails.deployed_model('synth')")[0][0] == first
    by_dataset = sql("SELECT trails.predict('synth', s), trails.predict(%s, s), trails.predict_label('synth', s),"
                     " trails.predict_label(%s, s) FROM synth s ORDER BY id LIMIT 20", first, first)
    assert all(a == b and c == d for a, b, c, d in by_dataset)
    table = sql("SELECT id, score FROM trails.predict_table('synth', 'synth') ORDER BY id LIMIT 20")
    assert table == sql("SELECT id, score FROM trails.predict_table(%s, 'synth') ORDER BY id LIMIT 20", first)
    history = sql("SELECT model_id, metric, test_score FROM trails.deployments ORDER BY deployment_id")
    assert [(m, s) for m, _, s in history] == [(m, scores[m]) for m in (best, first, second, first)]


def test_refused_deployments_change_nothing(sql):
    first, _ = _models(sql)
    sql("SELECT * FROM trails.deploy('synth', %s)", first)
    refusals = [
        ("SELECT * FROM trails.deploy('other', %s)" % first, f"model {first} is a model of synth, not of other"),
        ("SELECT * FROM trails.deploy('synth', strategy => 'rollback')", "no earlier deployment to roll back to"),
        ("SELECT * FROM trails.deploy('synth', strategy => 'sideways')", "unknown strategy 'sideways'"),
        ("SELECT * FROM trails.deploy('synth', %s, 'most_recent')" % first, "model_id must be NULL"),
        ("SELECT * FROM trails.deploy('synth', strategy => 'model')", "names no model_id"),
        ("SELECT * FROM trails.deploy(NULL, %s)" % first, "dataset must be a non-empty name"),
        ("SELECT * FROM trails.deploy('synth', 424242)", "model 424242 not found"),
    ]
    for statement, message in refusals:
        with pytest.raises(psycopg.Error) as error:
            sql(statement)
        assert message in error.value.diag.message_primary, statement
        assert error.value.diag.message_hint, statement
    sql("ALTER TABLE synth DROP COLUMN c")  # the model reads c: it no longer reads the table
    with pytest.raises(psycopg.Error) as error:
        sql("SELECT * FROM trails.deploy('synth', %s)", first)
    assert "lacks 1 of the 3 columns" in error.value.diag.message_primary and ": c" in error.value.diag.message_primary
    assert sql("SELECT count(*) FROM trails.deployments")[0][0] == 1


def test_a_role_sees_and_deploys_only_models_of_tables_it_may_read(sql):
    first, _ = _models(sql)
    sql("SELECT * FROM trails.deploy('synth', %s)", first)
    sql("CREATE TABLE other_synth AS SELECT * FROM synth")
    other = sql("SELECT model_id FROM model_selection('other_synth', NULL, max_trials => 1, families => 'gbdt',"
                " refinement => 'backend', deploy => 'always')")[0][0]
    sql("CREATE ROLE trails_deployer")
    sql("GRANT USAGE ON SCHEMA trails TO trails_deployer")
    sql("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA trails TO trails_deployer")
    sql("GRANT USAGE ON ALL SEQUENCES IN SCHEMA trails TO trails_deployer")
    sql("REVOKE ALL ON synth, other_synth FROM PUBLIC")
    visible = ("SELECT (SELECT array_agg(model_id ORDER BY model_id) FROM trails.models),"
               " (SELECT array_agg(DISTINCT dataset ORDER BY dataset) FROM trails.deployments),"
               " (SELECT count(*) FROM trails.runs), (SELECT count(*) FROM trails.layouts)")
    sql("SET ROLE trails_deployer")
    try:  # no table readable: no row of trails' tables either
        assert sql(visible)[0] == (None, None, 0, 0)
        for statement in ("SELECT * FROM trails.deploy('synth', %s)" % first,
                          "SELECT trails.predict(%s, s) FROM (SELECT 1 AS a) s" % other):
            with pytest.raises(psycopg.Error) as error:
                sql(statement)
            assert "not found" in error.value.diag.message_primary, statement
            assert "may SELECT from" in error.value.diag.message_detail, statement
        with pytest.raises(psycopg.Error) as error:
            sql("SELECT trails.deployed_model('synth')")
        assert "no model of synth is deployed" in error.value.diag.message_primary
    finally:
        sql("RESET ROLE")
    sql("GRANT SELECT ON synth TO trails_deployer")
    sql("SET ROLE trails_deployer")
    try:  # synth readable: its models, runs, layout and deployment, and none of other_synth's
        models, deployed, runs, layouts = sql(visible)[0]
        assert other not in models and first in models and deployed == ["synth"] and runs == len(models)
        assert layouts >= 1
        assert sql("SELECT model_id, deployed_by::text FROM trails.deploy('synth', %s)", first)[0] == \
            (first, "trails_deployer")
        assert sql("SELECT trails.deployed_model('synth')")[0][0] == first
    finally:
        sql("RESET ROLE")
    assert sql("SELECT count(DISTINCT dataset) FROM trails.deployments")[0][0] == 2  # the owner sees all


def test_model_selection_deploys_if_better_on_the_current_test_rows(sql, postgresql):
    sql(SYNTHETIC)
    notices = []
    postgresql.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    call = ("SELECT model_id, test_score, deployed FROM model_selection('synth', NULL, max_trials => 2,"
            " families => 'gbdt', refinement => 'backend', seed => %s, deploy => %s)")
    first, _, deployed = sql(call, 0, "if_better")[0]
    assert deployed and sql("SELECT trails.deployed_model('synth')")[0][0] == first
    assert any(f"model {first} deployed for synth: no model of synth was deployed" in n for n in notices)
    kept, _, deployed = sql(call, 1, "never")[0]
    assert not deployed and sql("SELECT trails.deployed_model('synth')")[0][0] == first
    # the table grows: the deployed model is scored again on the test rows as they are now
    sql("INSERT INTO synth SELECT i, i % 7, chr(65 + i % 5), ((i * 37) % 101) / 10.0,"
        " CASE WHEN (i % 7) + (i % 5) > 5 THEN 1 ELSE 0 END FROM generate_series(12001, 15000) AS i")
    notices.clear()
    second, _, second_deployed = sql(call, 2, "if_better")[0]
    verdict = [n for n in notices if n.startswith(f"model {second} ")]
    assert len(verdict) == 1 and f"the deployed model {first}'s" in verdict[0], notices
    assert ("does not beat" not in verdict[0]) == second_deployed and "test rows" in verdict[0]
    assert sql("SELECT trails.deployed_model('synth')")[0][0] == (second if second_deployed else first)
    third, _, deployed = sql(call, 3, "always")[0]
    assert deployed and sql("SELECT trails.deployed_model('synth')")[0][0] == third
    strategies = [s for (s,) in sql("SELECT strategy FROM trails.deployments ORDER BY deployment_id")]
    assert strategies == ["if_better"] + ["if_better"] * second_deployed + ["always"]
    assert kept not in [m for (m,) in sql("SELECT model_id FROM trails.deployments")]
    with pytest.raises(psycopg.Error) as error:
        sql(call, 4, "sometimes")
    assert "unknown deploy choice 'sometimes'" in error.value.diag.message_primary
