"""Benchmark: the refinement service's streaming start against reading the whole train split first.

For each mode (``[service] stream_train`` true / false), interleaved, ``--repeats`` times: a
fresh refinement service (empty tensor cache) on ``[service] port`` of ``config.ini``, then
``model_selection(<dataset>, <budget>, refinement => 'service')`` through psycopg2 (PG*
variables; PGDATABASE default trails). Printed per call: seconds from the job's start until
training started, train rows in at that moment, epochs trained, test AUC, wall time; then the
medians and the ratio (read-first / streaming) of the time to the first training step.
The database must be set up by ``make install`` (its config names the service's port).
Run it alone: 2 cores here.

Usage: /opt/trails-venv/bin/python scripts/bench_streaming.py [--dataset frappe15] [--budget 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent


def start_service(config: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "trails.refinement.service", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the refinement service exited")
            time.sleep(0.2)
    raise RuntimeError("the refinement service did not start")


def one_call(dataset: str, budget: float, stream: bool, port: int) -> dict:
    parser = configparser.ConfigParser()
    parser.read(REPO / "config.ini")
    if not parser.has_section("service"):
        parser.add_section("service")
    parser.set("service", "stream_train", "true" if stream else "false")
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as handle:
        parser.write(handle)
    config = Path(handle.name)
    # relative paths in config.ini are relative to its folder
    os.environ.setdefault("TRAILS_DATA_DIR", str((REPO / parser.get("data", "data_dir", fallback="../shared/data")).resolve()))
    process = start_service(config, port)
    try:
        connection = psycopg2.connect("")
        connection.autocommit = True
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SELECT test_auc FROM model_selection(%s, %s, refinement => 'service', warm_start => false)", (dataset, budget))
            test_auc = cursor.fetchone()[0]
        wall = time.monotonic() - started
        connection.close()
        jobs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/jobs", timeout=5).read())
        job = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/jobs/{jobs[-1]['job_id']}",
                                                timeout=5).read())
        result = job["result"]
        return {"start_s": result["training_started_after_s"], "rows_at_start": result["train_rows_at_start"],
                "train_rows": result["train_rows"], "epochs": result["trained_epochs"],
                "test_auc": test_auc, "wall_s": wall}
    finally:
        process.terminate()
        process.wait(timeout=30)
        config.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="frappe15")
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PGDATABASE", "trails")
    settings = configparser.ConfigParser()
    settings.read(REPO / "config.ini")
    port = settings.getint("service", "port", fallback=8093)
    runs: dict[str, list[dict]] = {"streaming": [], "read first": []}
    for repeat in range(args.repeats):
        for name, stream in (("streaming", True), ("read first", False)):
            outcome = one_call(args.dataset, args.budget, stream, port)
            runs[name].append(outcome)
            print(f"repeat {repeat + 1} {name:10s}: training started after {outcome['start_s']:6.2f} s on "
                  f"{outcome['rows_at_start']:,} of {outcome['train_rows']:,} train rows; {outcome['epochs']} "
                  f"epochs; test AUC {outcome['test_auc']:.4f}; call {outcome['wall_s']:.1f} s", flush=True)
    medians = {name: statistics.median(o["start_s"] for o in outcomes) for name, outcomes in runs.items()}
    print(f"\nmedian seconds from the job's start to training (budget {args.budget:g} s, {args.dataset}):")
    for name, outcomes in runs.items():
        print(f"  {name:10s} {medians[name]:6.2f} s   epochs {statistics.median(o['epochs'] for o in outcomes):g}"
              f"   test AUC {statistics.median(o['test_auc'] for o in outcomes):.4f}")
    print(f"  read first / streaming: {medians['read first'] / medians['streaming']:.1f}x")


if __name__ == "__main__":
    main()
