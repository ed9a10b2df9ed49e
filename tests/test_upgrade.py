"""ALTER EXTENSION trails UPDATE from 0.1.0 (its script as released, then the released step to
0.2.0, the steps to 0.3.0, 0.4.0, 0.5.0 and 0.6.0) keeps runs, models and layouts usable: scores, parameter
counts, tasks and families filled in, stored models still predict; the updated extension has a fresh
one's functions and row-level security policies."""

import io
import json

import psycopg
import torch

from trails.model import build_model, mlp_parameters, state_to_bytes

LAYOUT_0_1_0 = {"label": "label", "positive": "1", "train_rows": 100, "skipped": {},
                "fields": [{"name": "colour", "kind": "categorical", "sql_type": "text", "first_id": 0,
                            "cardinality": 2, "missing_id": 2, "unknown_id": 3, "values": ["blue", "red"],
                            "mean": 0.0, "std": 1.0}]}


def test_update_from_0_1_0(sql, pg_dsn):
    dbname = dict(part.split("=", 1) for part in pg_dsn.split())["dbname"]
    other = f"{dbname}_upgrade"
    sql(f"CREATE DATABASE {other}")
    try:
        with psycopg.connect(pg_dsn.replace(f"dbname={dbname}", f"dbname={other}"), autocommit=True) as db:
            db.execute("CREATE EXTENSION trails VERSION '0.1.0' CASCADE")
            # rows as 0.1.0 wrote them: a layout with a positive class, a run, its model
            torch.manual_seed(0)
            network = build_model((8, 16), n_ids=4, n_fields=1, embedding_dim=10)
            hyper = {"n_ids": 4, "n_fields": 1, "embedding_dim": 10, "batch_norm": True, "epochs": 3}
            layout_id = db.execute(
                "INSERT INTO trails.layouts (dataset, train_table, label, train_rows, settings, layout)"
                " VALUES ('paint', 'paint', 'label', 100, 'x', %s) RETURNING layout_id",
                (json.dumps(LAYOUT_0_1_0),)).fetchone()[0]
            run_id = db.execute(
                "INSERT INTO trails.runs (dataset, label, layout_id, budget_s, tfmem, refinement, n_scored,"
                " k_refined, u, t1, t2, phases, best_arch, valid_auc, test_auc, elapsed_s, seed, started_at)"
                " VALUES ('paint', 'label', %s, 10, 'express_flow', 'backend', 5, 2, 1, 0.001, 0.1, '{}',"
                " '8-16', 0.8, 0.7, 9.5, 0, now()) RETURNING run_id", (layout_id,)).fetchone()[0]
            model_id = db.execute(
                "INSERT INTO trails.models (run_id, dataset, layout_id, arch, hyper, weights, valid_auc, test_auc)"
                " VALUES (%s, 'paint', %s, '8-16', %s, %s, 0.8, 0.7) RETURNING model_id",
                (run_id, layout_id, json.dumps(hyper), state_to_bytes(network.state_dict()))).fetchone()[0]
            db.execute("CREATE TABLE paint (colour text, label int)")
            db.execute("INSERT INTO paint VALUES ('red', 1), ('blue', 0), (NULL, 0)")

            db.execute("ALTER EXTENSION trails UPDATE")
            assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'trails'").fetchone()[0] == "0.6.0"
            assert db.execute("SELECT task, metric, valid_score, test_score FROM trails.runs").fetchone() == \
                ("binary", "roc_auc", 0.8, 0.7)
            assert db.execute("SELECT families, family, family_scores FROM trails.runs").fetchone() == \
                ("mlp", "mlp", {"mlp": 0.8})
            task, metric, params = db.execute("SELECT task, metric, params FROM trails.models").fetchone()
            assert (task, metric) == ("binary", "roc_auc")
            assert params == mlp_parameters((8, 16), 10, 2, True)
            stored = db.execute("SELECT layout->'task' FROM trails.layouts").fetchone()[0]
            assert stored["kind"] == "binary" and stored["classes"] == ["0", "1"]
            # the stored model predicts through the new functions, as before the update
            network.eval()
            with torch.no_grad():
                expected = torch.softmax(network(torch.tensor([[1]]), torch.ones(1, 1)), dim=1)[0, 1].item()
            got = db.execute("SELECT trails.predict(%s, p) FROM paint p WHERE colour = 'red'", (model_id,)).fetchone()[0]
            assert abs(got - expected) < 1e-5
            # its hyper names no family: it is an MLP, and exports as one
            program = bytes(db.execute("SELECT trails.export_model(%s, 'torch_export')", (model_id,)).fetchone()[0])
            with torch.no_grad():
                exported = torch.export.load(io.BytesIO(program)).module()(torch.tensor([[1]]), torch.ones(1, 1))
            assert abs(exported.item() - expected) < 1e-5
            # and the updated extension has the same functions as a fresh one
            functions = ("SELECT p.oid::regprocedure::text FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid"
                         " WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'trails')"
                         " AND d.deptype = 'e' ORDER BY 1")
            updated = [row[0] for row in db.execute(functions)]
            policies = ("SELECT tablename, policyname, qual FROM pg_policies WHERE schemaname = 'trails' ORDER BY 1, 2")
            updated_policies = [tuple(row) for row in db.execute(policies)]
        assert updated == [row[0] for row in sql(functions)]
        assert len(updated_policies) == 4 and updated_policies == [tuple(row) for row in sql(policies)]
    finally:
        sql(f"DROP DATABASE {other} WITH (FORCE)")
