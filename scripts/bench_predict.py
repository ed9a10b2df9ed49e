"""Benchmark: how fast stored models score rows in SQL, beside ``SELECT count(*)`` of the same rows.

For each model (by default the newest frappe model of each family in ``trails.models``;
``--select`` first runs ``model_selection('frappe', 30, families => ...)`` for each family),
on ``--table`` (default frappe_test), measured in the database named by the PG* variables:

* **first row**: ``SELECT trails.predict(m, t) FROM table t LIMIT 1`` in a new backend — the
  imports and the model's loading included (``--repeats`` backends, median);
* **per row**: ``SELECT sum(trails.predict(m, t)) FROM table t`` (a sum, so that no call is
  planned away), warm, median of ``--repeats``;
* **predict_table**: ``SELECT sum(score) FROM trails.predict_table(m, 'table')``, and again
  ``with_proba => true``, warm, median of ``--repeats``;
* **count(*)**: ``SELECT count(*) FROM table`` in the same runs: the reference each rows/s is
  divided by;
* **the model alone**, in this process (not in the database): the rows read and encoded once,
  then the forward pass of :mod:`trails.serving` over all of them at once, and one row at a
  time from their dicts (encoding included) — the ceiling the SQL paths approach.

Prints a table (rows/s and the ratio to count(*)) and writes ``bench_predict.csv`` and
``bench_predict.txt`` under ``$TRAILS_RESULTS_DIR`` (default exps/results).

Usage: /opt/trails-venv/bin/python scripts/bench_predict.py [--models 2,3] [--select]
       [--table frappe_test] [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psycopg2

REPO = Path(__file__).resolve().parent.parent


def timed(dsn: str, sql: str, args=(), connection=None) -> float:
    """Seconds to run ``sql`` and fetch its rows (in ``connection``, else in a new backend)."""
    own = connection is None
    connection = connection or psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql, args)
            cursor.fetchall()
            return time.perf_counter() - started
    finally:
        if own:
            connection.close()


def newest_models(connection, dataset: str) -> list[int]:
    """The newest model of ``dataset`` of each family."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT ON (coalesce(hyper->>'family', 'mlp')) model_id FROM trails.models"
                       " WHERE dataset = %s ORDER BY coalesce(hyper->>'family', 'mlp'), model_id DESC", (dataset,))
        return sorted(row[0] for row in cursor.fetchall())


def select_models(connection) -> list[int]:
    """One frappe model of each family, selected now (30 s each)."""
    ids = []
    with connection.cursor() as cursor:
        for family in ("gbdt", "mlp"):
            cursor.execute("SELECT model_id FROM model_selection('frappe', 30, families => %s)", (family,))
            ids.append(cursor.fetchone()[0])
    connection.commit()
    return ids


def describe(connection, model_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(hyper->>'family', 'mlp'), arch, params FROM trails.models WHERE model_id = %s",
                       (model_id,))
        family, arch, params = cursor.fetchone()
    return f"{family} {arch} ({params} params)"


def measure(dsn: str, model_id: int, table: str, repeats: int) -> dict:
    """Median seconds of each path for ``model_id`` on ``table`` (see the module docstring)."""
    quoted = '"' + table.replace('"', '""') + '"'
    first = [timed(dsn, f"SELECT trails.predict(%s, t) FROM {quoted} t LIMIT 1", (model_id,)) for _ in range(repeats)]
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        statements = {
            "count(*)": (f"SELECT count(*) FROM {quoted}", ()),
            "per row": (f"SELECT sum(trails.predict(%s, t)) FROM {quoted} t", (model_id,)),
            "predict_table": ("SELECT sum(score) FROM trails.predict_table(%s, %s)", (model_id, table)),
            "predict_table with_proba": ("SELECT sum(score), count(proba) FROM trails.predict_table(%s, %s, true)",
                                         (model_id, table)),
        }
        timed(dsn, statements["per row"][0], statements["per row"][1], connection)  # warm: model loaded
        times = {name: [] for name in statements}
        for _ in range(repeats):  # interleaved
            for name, (sql, args) in statements.items():
                times[name].append(timed(dsn, sql, args, connection))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {quoted}")
            rows = cursor.fetchone()[0]
    finally:
        connection.close()
    return {"rows": rows, "first row": statistics.median(first),
            **{name: statistics.median(values) for name, values in times.items()}}


def model_alone(dsn: str, model_id: int, table: str, repeats: int) -> dict:
    """Median seconds of the model's batch forward pass over every row of ``table`` and of
    scoring them one row dict at a time, in this process (see the module docstring)."""
    import json

    from trails.data.layout import table_columns
    from trails.data.session import PgSession
    from trails.serving.scorer import scorer_for

    connection = psycopg2.connect(dsn)
    try:
        session = PgSession(connection)
        scorer = scorer_for(session, model_id)
        layout = scorer.stored.layout
        names = {c["name"] for c in table_columns(session, table)}
        encoded = [layout.encode(chunk)[:2] for chunk in
                   session.chunks(layout.select_features_sql(table, session.quote_ident, None, names), 10000)]
        ids, values = (np.concatenate([part[i] for part in encoded]) for i in (0, 1))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT to_json(t)::text FROM {session.quote_ident(table)} t")
            rows = [json.loads(text) for (text,) in cursor.fetchall()]
    finally:
        connection.close()
    batch, one_by_one = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.outputs(ids, values)
        batch.append(time.perf_counter() - started)
        started = time.perf_counter()
        for row in rows:
            scorer.row_outputs(row)
        one_by_one.append(time.perf_counter() - started)
    return {"model alone, all rows at once": statistics.median(batch),
            "model alone, one row at a time": statistics.median(one_by_one)}


def cpu_name() -> str:
    with open("/proc/cpuinfo") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                    platform.processor())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="model ids, comma-separated (default: the newest frappe model of each family)")
    parser.add_argument("--select", action="store_true", help="select a frappe model of each family first")
    parser.add_argument("--table", default="frappe_test")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    dsn = ""  # PG* variables
    connection = psycopg2.connect(dsn)
    models = ([int(m) for m in args.models.split(",")] if args.models else
              select_models(connection) if args.select else newest_models(connection, "frappe"))
    if not models:
        print("no frappe model stored: run with --select, or SELECT * FROM model_selection('frappe', 30)",
              file=sys.stderr)
        return 2
    names = {m: describe(connection, m) for m in models}
    connection.close()
    header = (f"# bench_predict: {args.table}, medians of {args.repeats}; CPU {cpu_name()}, {os.cpu_count()} cores; "
              f"nothing else running")
    lines, records = [header], []
    for model_id in models:
        result = {**measure(dsn, model_id, args.table, args.repeats),
                  **model_alone(dsn, model_id, args.table, args.repeats)}
        rows = result["rows"]
        reference = rows / result["count(*)"]
        lines.append(f"\nmodel {model_id}: {names[model_id]}, {rows} rows; count(*) {result['count(*)'] * 1e3:.1f} ms "
                     f"({reference:,.0f} rows/s)")
        lines.append(f"  first row in a new backend: {result['first row']:.2f} s")
        for path in ("per row", "predict_table", "predict_table with_proba", "model alone, all rows at once",
                     "model alone, one row at a time"):
            speed = rows / result[path]
            lines.append(f"  {path:<31} {result[path]:7.3f} s  {speed:>10,.0f} rows/s  ({speed / reference:.4f} x count(*))")
            records.append({"model_id": model_id, "model": names[model_id], "path": path, "rows": rows,
                            "seconds": round(result[path], 4), "rows_per_s": round(speed),
                            "count_rows_per_s": round(reference), "first_row_s": round(result["first row"], 3)})
    print("\n".join(lines))
    out = Path(os.environ.get("TRAILS_RESULTS_DIR", REPO / "exps" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_predict.txt").write_text("\n".join(lines) + "\n")
    with open(out / "bench_predict.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
