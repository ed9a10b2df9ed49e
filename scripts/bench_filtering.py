"""Filtering-phase benchmark: figures and ratios measured side by side in one run.

P1  5,000 frappe archs with ExpressFlow in the database (warm backend, median of repeats),
    against the per-model reference (one fresh nn.Module per arch + autograd, as TRAILS
    scores), run in this process on a subset and extrapolated to 5,000.
P2  the whole search space (160,000 archs) with ExpressFlow in the database.
P3  in-DB vs out-of-DB on a data-dependent TFMEM (nas_wot), 5,000 archs: the same filtering
    code, rows through SPI vs through psycopg2 (scripts/bench_filtering_out_db.py, a separate
    process, timed from its connect to its last score).

Usage: python scripts/bench_filtering.py [--quick]   (connection from PG* variables)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg2
import torch

REPO = Path(__file__).resolve().parents[1]

from trails.model import build_mlp
from trails.space import SearchSpace
from trails.tfmem.express_flow import express_flow_of_network


def in_db(cursor, query: str, *args):
    cursor.execute(query, args)
    return cursor.fetchall()


def median_in_db(cursor, query: str, args: tuple, repeats: int) -> tuple[float, list]:
    """Median client-side wall seconds of ``query`` after one warm-up call, and the last rows."""
    in_db(cursor, query, *args)
    times, rows = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        rows = in_db(cursor, query, *args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def reference_ms_per_arch(archs: list, in_features: int) -> float:
    """One fresh nn.Module per arch (PyTorch default init), ExpressFlow by autograd."""
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for arch in archs:
        network = build_mlp(in_features, arch, 2, batch_norm=False)
        perturbation = torch.randn(4, in_features, generator=generator, dtype=torch.float64)
        express_flow_of_network(network, perturbation)
    return (time.perf_counter() - started) / len(archs) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and archs (CI-sized)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    p3_archs = 500 if args.quick else 5000
    connection = psycopg2.connect("")
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM trails.describe('frappe')")  # layout once, outside timings
    fields = in_db(cursor, "SELECT count(*) FROM trails.describe('frappe') WHERE kind <> 'skipped'")[0][0]
    in_features = fields * 10
    torch.set_num_threads(torch.get_num_threads())
    print(f"machine: {torch.get_num_threads()} torch threads; frappe: {fields} fields, in_features {in_features}")

    # P1
    p1_s, _ = median_in_db(cursor, "SELECT * FROM benchmark_filtering_latency_in_db(%s, 'frappe')",
                           (5000,), repeats)
    sql_s, top = median_in_db(cursor, "SELECT * FROM filtering_phase('frappe', 5000, 50)", (), repeats)
    space = SearchSpace()
    rng = np.random.default_rng(1)
    subset = [space.sample(rng) for _ in range(60 if args.quick else 300)]
    reference_ms = reference_ms_per_arch(subset, in_features)
    reference_s = reference_ms * 5000 / 1e3
    print(f"P1  5,000 archs, ExpressFlow, in-DB (benchmark_filtering_latency_in_db): {p1_s:.3f} s "
          f"(median of {repeats}; target <= 0.5 s)")
    print(f"    SELECT * FROM filtering_phase('frappe', 5000, 50): {sql_s:.3f} s, {len(top)} rows, best {top[0][1]}")
    print(f"    per-model reference (nn.Module + autograd, {len(subset)} archs): {reference_ms:.3f} ms/arch "
          f"-> {reference_s:.2f} s for 5,000")
    print(f"    ratio reference / in-DB: {reference_s / p1_s:.1f}x (target >= 20x; TRAILS: 115.9 s in-DB)")

    # P2
    p2_s, rows = median_in_db(cursor, "SELECT * FROM benchmark_filtering_latency_in_db(%s, 'frappe')",
                              (space.size,), max(1, repeats // 2))
    print(f"P2  whole space ({space.size:,} archs), ExpressFlow, in-DB: {p2_s:.2f} s "
          f"({rows[0][3]:,.0f} archs/s; target <= 10 s)")

    # P3
    in_s, rows = median_in_db(cursor, "SELECT * FROM benchmark_filtering_latency_in_db(%s, 'frappe', 32, 'nas_wot')",
                              (p3_archs,), max(1, repeats // 2))
    read_in, score_in = rows[0][0], rows[0][1]
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_filtering_out_db.py"), "--dataset",
                          "frappe", "--n", str(p3_archs), "--tfmem", "nas_wot",
                          "--repeats", str(max(1, repeats // 2) + 1)],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    runs = [list(map(float, line.split())) for line in out if line.strip()][1:]  # first = warm-up
    out_total = statistics.median(r[2] for r in runs)
    print(f"P3  {p3_archs:,} archs, nas_wot: in-DB {in_s:.2f} s (read {read_in:.3f} s, score {score_in:.2f} s); "
          f"out-of-DB {out_total:.2f} s (read+connect {statistics.median(r[0] for r in runs):.3f} s, "
          f"score {statistics.median(r[1] for r in runs):.2f} s)")
    print(f"    ratio out-of-DB / in-DB: {out_total / in_s:.2f}x (TRAILS: 1.63x; aim >= 1.6x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
