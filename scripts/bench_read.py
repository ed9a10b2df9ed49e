"""Benchmark: rows into tensors, in the backend and out of it, beside COPY of the same rows.

For each dataset, ``--repeats`` rounds, each round interleaving:

* ``copy`` — ``COPY (SELECT * FROM <split>) TO '/dev/null'`` of the train and valid splits,
  in the server (the reference: what PostgreSQL needs to hand the rows out);
* ``backend/<reader>`` — ``load_split`` of train + valid in a PL/Python function through SPI,
  in a fresh backend (torch imported before the clock starts);
* ``service/<reader>`` — the same through psycopg2 in a fresh Python process, as the refinement
  service reads (torch imported before the clock starts).

Printed per path: rows, median seconds, rows/s, the ratio to COPY's rows/s (the figure the
data-path issue asks ≥ 0.5 of), and the process's peak RSS (VmHWM) after the read. Rows go to
``bench_read.csv`` in ``$TRAILS_RESULTS_DIR`` (default ``exps/results``). The database is the
one of the PG* variables (PGDATABASE default trails), set up by ``make install``; ``frappe15``
(3,030,405 rows) is built there first when asked for and missing (exps/large_table.py).
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
sys.path.insert(0, str(REPO / "exps"))

SPLITS = ("train", "valid")

BACKEND_READ = """
CREATE FUNCTION pg_temp.bench_read(dataset text, label text, reader text) RETURNS text
LANGUAGE plpython3u AS $$
import json
from trails.data.read_speed import read_splits
from trails.data.session import SpiSession
return json.dumps(read_splits(SpiSession(plpy), dataset, label, reader))
$$
"""

SERVICE_READ = """
import json, sys
import psycopg2
from trails.data.session import PgSession
from trails.data.read_speed import read_splits
connection = psycopg2.connect("")
connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
print(json.dumps(read_splits(PgSession(connection), sys.argv[1], sys.argv[2], sys.argv[3])))
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
        if dataset == "frappe15":
            import large_table

            large_table.build(connection, rebuild=False)
        paths = [("copy", None)] + [(path, reader) for reader in args.readers.split(",")
                                    for path in ("backend", "service")]
        measured = {path_reader: [] for path_reader in paths}
        for repeat in range(args.repeats):
            for path, reader in paths:
                if path == "copy":
                    rows, seconds = copy_seconds(connection, dataset)
                    measured[(path, reader)].append({"rows": rows, "read_s": seconds, "peak_rss_mib": None})
                else:
                    read = backend_read if path == "backend" else service_read
                    measured[(path, reader)].append(read(dataset, "label", reader))
                last = measured[(path, reader)][-1]
                print(f"{dataset} {path}/{reader or '-'} #{repeat}: {last['rows']:,} rows in {last['read_s']:.2f} s",
                      flush=True)
        copy_rate = None
        for (path, reader), runs in measured.items():
            seconds = statistics.median(r["read_s"] for r in runs)
            rate = runs[0]["rows"] / seconds
            copy_rate = copy_rate or rate
            rss = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] is not None]
            results.append({"dataset": dataset, "path": path, "reader": reader or "", "rows": runs[0]["rows"],
                            "median_s": round(seconds, 3), "rows_per_s": round(rate),
                            "ratio_to_copy": round(rate / copy_rate, 3),
                            "peak_rss_mib": round(max(rss)) if rss else "", "repeats": len(runs)})
    print(f"\n{'dataset':10} {'path':8} {'reader':8} {'rows':>10} {'median s':>9} {'rows/s':>10} "
          f"{'x COPY':>7} {'peak RSS MiB':>12}")
    for r in results:
        print(f"{r['dataset']:10} {r['path']:8} {r['reader']:8} {r['rows']:>10,} {r['median_s']:>9.2f} "
              f"{r['rows_per_s']:>10,} {r['ratio_to_copy']:>7.2f} {r['peak_rss_mib']!s:>12}")
    out = Path(os.environ.get("TRAILS_RESULTS_DIR") or REPO / "exps" / "results") / "bench_read.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
