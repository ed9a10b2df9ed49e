"""Large table: ``model_selection`` on 3,030,405 rows (frappe's train split × 15) within 90 s.

The table ``frappe15`` is frappe_train repeated 15 times (ids made distinct), split by a hash
of the id into train / valid / test (70 / 20 / 10 %): about 2.1M / 606K / 303K rows, the
frappe layout. It is built once in the database (``--rebuild`` drops and builds it again);
it is a stress test of reading and of the plan's per-epoch costs, not a new dataset: its test
rows repeat rows that are also in train, so its AUC says nothing about generalisation.

What issue #7 asks of it: with 90 s, more than one candidate is refined (K ≥ 2) and the test
AUC is ≥ 0.96. Every run's row and phases go to ``large_table.csv``.

    python exps/large_table.py [--budget 90] [--seeds 1] [--threads 2] [--rebuild]
"""

from __future__ import annotations

import json

import common
import systems
from common import log

DATASET = "frappe15"
COPIES = 15
COLUMNS = ["dataset", "rows", "budget_s", "seed", "threads", "test_auc", "valid_auc", "elapsed_s",
           "wall_s", "best_arch", "n_scored", "k", "u", "load_s", "profile_s", "filtering_s",
           "refinement_s", "test_s", "winner_epochs", "decision_rows"]


def build(connection, rebuild: bool) -> int:
    """Create ``frappe15_{train,valid,test}`` from frappe_train unless they exist; total rows."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('frappe15_train') IS NOT NULL")
        exists = cursor.fetchone()[0]
        if exists and rebuild:
            cursor.execute("DROP TABLE frappe15_train, frappe15_valid, frappe15_test")
            exists = False
        if not exists:
            log(f"building {DATASET}: frappe_train x {COPIES}, split by hash of the id")
            cursor.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                           "WHERE attrelid = 'frappe_train'::regclass AND attnum > 0 AND NOT attisdropped "
                           "AND attname <> 'id'")
            others = cursor.fetchone()[0]
            cursor.execute(
                f"CREATE TEMP TABLE frappe15_all AS SELECT copy * 10000000 + id AS id, {others} "
                f"FROM frappe_train CROSS JOIN generate_series(0, {COPIES - 1}) AS copy")
            bucket = "(hashint8(id) & 2147483647) % 10"
            for split, condition in (("train", f"{bucket} < 7"), ("valid", f"{bucket} IN (7, 8)"),
                                     ("test", f"{bucket} = 9")):
                cursor.execute(f"CREATE TABLE frappe15_{split} AS SELECT * FROM frappe15_all WHERE {condition}")
                cursor.execute(f"ALTER TABLE frappe15_{split} ADD PRIMARY KEY (id)")
                cursor.execute(f"ANALYZE frappe15_{split}")
            cursor.execute("DROP TABLE frappe15_all")
        cursor.execute("SELECT (SELECT count(*) FROM frappe15_train) + (SELECT count(*) FROM frappe15_valid)"
                       " + (SELECT count(*) FROM frappe15_test)")
        return int(cursor.fetchone()[0])


def phases_of(connection, run_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT phases FROM trails.runs WHERE run_id = %s", (run_id,))
        phases = cursor.fetchone()[0]
    return phases if isinstance(phases, dict) else json.loads(phases)


def main() -> None:
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=90.0)
    p.add_argument("--rebuild", action="store_true", help="drop and build the tables again")
    args = p.parse_args()
    common.setup(args)
    log(common.stamp())
    connection = common.connect()
    total = build(connection, args.rebuild)
    log(f"{DATASET}: {total:,} rows")
    common.backend_threads(connection, args.threads)
    rows = []
    for seed in range(args.seeds or 1):
        result = systems.trails_sql(connection, DATASET, args.budget, "label", seed, "backend")
        phases = phases_of(connection, result["run_id"])
        refinement = phases.get("refinement", {})
        row = dict(result, dataset=DATASET, rows=total, budget_s=args.budget, seed=seed, threads=args.threads,
                   **{key: phases.get(key) for key in ("load_s", "profile_s", "filtering_s", "refinement_s", "test_s")},
                   winner_epochs=refinement.get("winner_epochs"), decision_rows=refinement.get("decision_rows"))
        log(f"seed {seed}: K = {row['k']}, test AUC {row['test_auc']:.4f}, elapsed {row['elapsed_s']:.1f} s "
            f"(load {row['load_s']:.1f} s), winner {row['best_arch']} after {row['winner_epochs']} epochs")
        rows.append(row)
    common.write_csv(common.result_path("large_table", "csv", args.quick), rows, COLUMNS)


if __name__ == "__main__":
    main()
