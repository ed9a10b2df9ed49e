"""The out-of-database twin of ``benchmark_filtering_latency_in_db``: the same filtering code
(:func:`trails.context.resolve_context` + :func:`trails.filtering.filter_archs`), rows read
through psycopg2 instead of SPI.

Usage (connection from PGHOST/PGPORT/PGUSER/PGDATABASE):
    python scripts/bench_filtering_out_db.py --dataset frappe --n 5000 [--tfmem nas_wot]
        [--batch-size 32] [--repeats 3]

Prints one line per repeat: ``read_s score_s total_s archs_per_s`` where total_s counts
connecting, reading and scoring (the interpreter start and imports are not counted).
"""

from __future__ import annotations

import argparse
import sys
import time

from trails.context import resolve_context
from trails.data.pg import connect
from trails.data.session import PgSession
from trails.filtering import filter_archs


def filter_once(dataset: str, n: int, tfmem: str, batch_size: int, label: str) -> tuple:
    started = time.perf_counter()
    connection = connect()
    try:
        context = resolve_context(PgSession(connection), dataset, label, tfmem, batch_size)
        result = filter_archs(context.space, context.scoring, n, tfmem, "evolution")
    finally:
        connection.close()
    total = time.perf_counter() - started
    return total - result.score_s, result.score_s, total, result.n_scored / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="frappe")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--tfmem", default="express_flow")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--label", default="label")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.repeats):
        print(" ".join(f"{value:.6f}" for value in
                       filter_once(args.dataset, args.n, args.tfmem, args.batch_size, args.label)),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
