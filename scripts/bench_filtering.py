"""Filtering benchmark: the scoring latency of the filtering phase, and (--in-db) the database figures.

Default, no database: what ``SELECT * FROM benchmark_filtering_latency_in_db(5000, 'frappe')``
spends scoring. The same call as that SQL function — :func:`trails.filtering.filter_archs` with
ExpressFlow, strategy ``evolution``, the ``[search]`` settings, seed 0 — on frappe's scoring
inputs built as :func:`trails.context.resolve_context` builds them (in_features = frappe's 10
fields × ``[refinement] embedding_dim``, 2 outputs, no batch: ExpressFlow is data-agnostic; the
configured space for frappe's 202,027 train rows), so the only part of the SQL call left out is
resolving the dataset (reading its layout, milliseconds). Printed:

* 5,000 archs by evolution: median wall seconds of ``--repeats`` runs after a warm-up call (a
  warm backend, as the SQL benchmark measures it), and the first, cold call of the process
  (shared weights drawn, prefix memo empty);
* the whole space (160,000 archs) scored exhaustively in the same process, median of the
  same repeats, and the ratio evolution(5,000) / whole space.

Threads are fixed: ``--threads`` torch threads and as many BLAS threads (threadpoolctl; the flow
kernels themselves run BLAS single-threaded, see ``trails.tfmem.vectorised``). The load average
is printed: on a shared machine, the wall times grow with it.

``--in-db`` (connection from PG* variables; ``scripts/bench_filtering.sh``):
P1  5,000 frappe archs with ExpressFlow in the database (warm backend, median of repeats),
    against the per-model reference (one fresh nn.Module per arch + autograd, as TRAILS
    scores), run in this process on a subset and extrapolated to 5,000.
P2  the whole search space (160,000 archs) with ExpressFlow in the database.
P3  in-DB vs out-of-DB on a data-dependent TFMEM (nas_wot), 5,000 archs: the same filtering
    code, rows through SPI vs through psycopg2 (scripts/bench_filtering_out_db.py, a separate
    process, timed from its connect to its last score).

Usage: python scripts/bench_filtering.py [--repeats 7] [--threads 1] [--in-db [--quick]]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg2
import torch
from threadpoolctl import threadpool_limits

from trails.config import load_config
from trails.context import space_for
from trails.filtering import SearchSettings, filter_archs
from trails.model import build_mlp
from trails.space import SearchSpace
from trails.tfmem import ScoringInputs
from trails.tfmem.express_flow import express_flow_of_network

REPO = Path(__file__).resolve().parents[1]
FRAPPE_FIELDS = 10  # frappe's layout: 10 categorical fields (shared/data/README.md)
FRAPPE_TRAIN_ROWS = 202_027  # chooses the space (the large-width one only from [space] large_rows)
FILTERED_ARCHS = 5000


def frappe_scoring_inputs(config) -> ScoringInputs:
    """frappe's ScoringInputs for a data-agnostic TFMEM, as resolve_context builds them."""
    return ScoringInputs(FRAPPE_FIELDS * config.getint("refinement", "embedding_dim"), None, 2)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def scoring_latency(repeats: int, threads: int) -> int:
    """The default benchmark (see the module docstring)."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    config = load_config()
    space, inputs = space_for(FRAPPE_TRAIN_ROWS, config), frappe_scoring_inputs(config)
    settings = SearchSettings.from_config(config)
    evolution = functools.partial(filter_archs, space, inputs, FILTERED_ARCHS, "express_flow", "evolution", 0,
                                  settings=settings)
    whole = functools.partial(filter_archs, space, inputs, space.size, "express_flow", "exhaustive", 0,
                              settings=settings)
    print(f"{threads} torch + BLAS threads; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"frappe: in_features {inputs.in_features}, {space}; evolution P={settings.population} "
          f"S={settings.sample} round={settings.round_size}", flush=True)
    cold = timed(evolution)
    evolution_s, whole_s = [], []
    for _ in range(repeats):  # interleaved, so that both see the same load
        evolution_s.append(timed(evolution))
        whole_s.append(timed(whole))
    evolution_median, whole_median = statistics.median(evolution_s), statistics.median(whole_s)
    print(f"{FILTERED_ARCHS:,} archs, evolution, ExpressFlow: {evolution_median:.3f} s median of {repeats} "
          f"(min {min(evolution_s):.3f}, max {max(evolution_s):.3f}; first call of the process {cold:.3f} s; "
          f"target < 0.5 s)")
    print(f"whole space, {space.size:,} archs, exhaustive: {whole_median:.3f} s median "
          f"(min {min(whole_s):.3f}, max {max(whole_s):.3f})")
    print(f"ratio evolution({FILTERED_ARCHS:,}) / whole space: {evolution_median / whole_median:.3f} "
          f"({FILTERED_ARCHS / space.size:.3f} of the archs); load average now {os.getloadavg()[0]:.2f}")
    return 0


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
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each (default 7)")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    parser.add_argument("--in-db", action="store_true", help="the database figures P1-P3 instead")
    parser.add_argument("--quick", action="store_true", help="with --in-db: fewer repeats and archs (CI-sized)")
    args = parser.parse_args()
    if not args.in_db:
        return scoring_latency(args.repeats, args.threads)
    return in_db_figures(args)


def in_db_figures(args) -> int:
    """P1-P3 in the database (see the module docstring)."""
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
