"""The out-of-database twin of ``benchmark_filtering_latency_in_db``: the same filtering code
(:func:`trails.filtering.run_filtering`), rows read through psycopg2 instead of SPI.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from trails.data.pg import connect  # noqa: E402
from trails.data.session import PgSession  # noqa: E402
from trails.filtering import run_filtering  # noqa: E402


def filter_once(dataset: str, n: int, tfmem: str, batch_size: int, label: str) -> tuple:
    started = time.perf_counter()
    connection = connect()
    try:
        result = run_filtering(PgSession(connection), dataset, n, None, tfmem, "evolution", label,
                               batch_size=batch_size)
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
