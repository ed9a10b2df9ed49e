"""Benchmark: model_selection of this checkout's installed package against an older commit,
interleaved in one run, on the same data and machine (out of the database through psycopg2,
refinement in-process on the CPU, like ``refinement => 'backend'``).

Usage (connection from PG* variables; frappe loaded):
    python scripts/bench_selection_versions.py --old-python /tmp/old-trails/python \\
        [--dataset frappe] [--budget 60] [--repeats 2]

The old version runs in a subprocess with PYTHONPATH pointing at its ``python/`` folder (that
commit predates the installed package); prints each run and the medians side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

RUN = """
import inspect, json, sys, time, psycopg2
from trails.data.session import PgSession
from trails.selection import run_model_selection
connection = psycopg2.connect("")
started = time.monotonic()
cold = {"warm_start": False} if "warm_start" in inspect.signature(run_model_selection).parameters else {}
row = run_model_selection(PgSession(connection), sys.argv[1], float(sys.argv[2]), refinement="backend", **cold)
row["wall_s"] = time.monotonic() - started
print("RESULT " + json.dumps(row))
"""


def run(python_path: str | None, dataset: str, budget: float) -> dict:
    env = dict(os.environ)
    if python_path:  # that commit reads the config.ini of its own checkout
        env["PYTHONPATH"] = python_path
        env.pop("TRAILS_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", RUN, dataset, str(budget)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("RESULT ", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-python", required=True)
    parser.add_argument("--dataset", default="frappe")
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = {"old": [], "new": []}
    for repeat in range(args.repeats):
        for name, path in (("old", args.old_python), ("new", None)):
            row = run(path, args.dataset, args.budget)
            results[name].append(row)
            print(f"{name} #{repeat}: test AUC {row['test_auc']:.4f} valid {row['valid_auc']:.4f} "
                  f"elapsed {row['elapsed_s']:.1f} s (wall {row['wall_s']:.1f} s) {row['best_arch']} "
                  f"K={row['k_refined']} U={row['u']}", flush=True)
    medians = {name: statistics.median(r["test_auc"] for r in rows) for name, rows in results.items()}
    elapsed = {name: statistics.median(r["elapsed_s"] for r in rows) for name, rows in results.items()}
    print(f"median test AUC: old {medians['old']:.4f}, new {medians['new']:.4f} "
          f"(difference {medians['new'] - medians['old']:+.4f}); median elapsed: old "
          f"{elapsed['old']:.1f} s, new {elapsed['new']:.1f} s of {args.budget:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
