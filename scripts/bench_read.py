"""Benchmark: rows into tensors, in the backend and out of it, beside COPY of the same rows.

For each dataset, ``--repeats`` rounds, each round interleaving:

* ``copy`` — ``COPY (SELECT * FROM <split>) TO '/dev/null'`` of the train and valid splits,
  in the server (the reference: what PostgreSQL needs to hand the rows out);
* ``backend/<reader>`` — ``load_split`` of train + valid in a PL/Python function through SPI,
  in a fresh backend (torch imported before the clock starts), twice;
* ``service/<reader>`` — the same through psycopg2 in a fresh Python process and connection,
  as the refinement service reads (torch imported before the clock starts), twice.

Printed per path: rows, median seconds of the first read in the fresh backend or process
(``first``: catalog caches, plans and Python's first calls are cold) and of the second
(``again``), rows/s and the ratio to COPY's rows/s for each (the figure the data-path issue
asks ≥ 0.5 of; COPY runs on a connection used before), and the process's peak RSS (VmHWM)
after the first read. Rows go to
``bench_read.csv`` in ``$TRAILS_RESULTS_DIR`` (default ``exps/results``). The database is the
one of the PG* variables (PGDATABASE default trails), set up by ``make install``; ``frappe15``
(3,030,405 rows) must have been built there by ``exps/large_table.py`` (its first run builds it).
Run it alone: 2 cores here.

Usage: /opt/trails-venv/bin/python scripts/bench_read.py [--datasets frappe,frappe15]
           [--readers columns,rows] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent

SPLITS = ("train", "valid")

BACKEND_READ = """
CREATE FUNCTION pg_temp.bench_read(dataset text, label text, reader text) RETURNS text
LANGUAGE plpython3u AS $$
import json
from trails.data.read_speed import read_splits
from trails.data.session import SpiSession
session = SpiSession(plpy)
return json.dumps([read_splits(session, dataset, label, reader) for _ in range(2)])
$$
"""

SERVICE_READ = """
import json, sys
import psycopg2
from trails.data.session import PgSession
from trails.data.read_speed import read_splits
connection = psycopg2.connect("")
connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
session = PgSession(connection)
print(json.dumps([read_splits(session, sys.argv[1], sys.argv[2], sys.argv[3]) for _ in range(2)]))
"""


def copy_seconds(connection, dataset: str) -> tuple[int, float]:
    """Rows and seconds of COPY TO '/dev/null' of the train and valid splits."""
    rows, seconds = 0, 0.0
    with connection.cursor() as cursor:
        for split in SPLITS:
            started = time.perf_counter()
            cursor.execute(f"COPY (SELECT * FROM {dataset}_{split}) TO '/dev/null'")
            seconds += time.perf_counter() - started
            rows += cursor.rowcount
    return rows, seconds


def backend_read(dataset: str, label: str, reader: str) -> dict:
    connection = psycopg2.connect("")  # a fresh backend: its peak RSS is this read's
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(BACKEND_READ)
            cursor.execute("SELECT pg_temp.bench_read(%s, %s, %s)", (dataset, label, reader))
            return json.loads(cursor.fetchone()[0])
    finally:
        connection.close()


def service_read(dataset: str, label: str, reader: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SERVICE_READ, dataset, label, reader],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="frappe,frappe15")
    parser.add_argument("--readers", default="columns,rows")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PGDATABASE", "trails")
    connection = psycopg2.connect("")
    connection.autocommit = True
    results = []
    for dataset in args.datasets.split(","):
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{dataset}_train",))
            if not cursor.fetchone()[0]:
                sys.exit(f"no table {dataset}_train in this database"
                         + (": build it with exps/large_table.py" if dataset == "frappe15" else ""))
        paths = [("copy", None)] + [(path, reader) for reader in args.readers.split(",")
                                    for path in ("backend", "service")]
        measured = {path_reader: [] for path_reader in paths}
        for repeat in range(args.repeats):
            for path, reader in paths:
                if path == "copy":
                    rows, seconds = copy_seconds(connection, dataset)
                    runs = [{"rows": rows, "read_s": seconds, "peak_rss_mib": None}] * 2
                else:
                    runs = (backend_read if path == "backend" else service_read)(dataset, "label", reader)
                measured[(path, reader)].append(runs)
                print(f"{dataset} {path}/{reader or '-'} #{repeat}: {runs[0]['rows']:,} rows in "
                      f"{runs[0]['read_s']:.2f} s, again {runs[1]['read_s']:.2f} s", flush=True)
        copy_rate = None
        for (path, reader), runs in measured.items():
            first = statistics.median(r[0]["read_s"] for r in runs)
            again = statistics.median(r[1]["read_s"] for r in runs)
            rows = runs[0][0]["rows"]
            copy_rate = copy_rate or rows / first
            rss = [r[0]["peak_rss_mib"] for r in runs if r[0]["peak_rss_mib"] is not None]
            results.append({"dataset": dataset, "path": path, "reader": reader or "", "rows": rows,
                            "first_s": round(first, 3), "again_s": round(again, 3),
                            "first_rows_per_s": round(rows / first), "again_rows_per_s": round(rows / again),
                            "first_x_copy": round(rows / first / copy_rate, 3),
                            "again_x_copy": round(rows / again / copy_rate, 3),
                            "peak_rss_mib": round(max(rss)) if rss else "", "repeats": len(runs)})
    print(f"\n{'dataset':10} {'path':8} {'reader':8} {'rows':>10} {'first s':>8} {'again s':>8} "
          f"{'x COPY':>7} {'again':>6} {'peak RSS MiB':>12}")
    for r in results:
        print(f"{r['dataset']:10} {r['path']:8} {r['reader']:8} {r['rows']:>10,} {r['first_s']:>8.2f} "
              f"{r['again_s']:>8.2f} {r['first_x_copy']:>7.2f} {r['again_x_copy']:>6.2f} {r['peak_rss_mib']!s:>12}")
    out = Path(os.environ.get("TRAILS_RESULTS_DIR") or REPO / "exps" / "results") / "bench_read.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
