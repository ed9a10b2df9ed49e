"""Peak resident memory (VmHWM) of the backend and of the refinement service during one
model_selection call, and what the service's size check says for that table.

    scripts/bench_memory.py --dataset frappe15 --budget 90 [--mode backend|service]

The call runs through psycopg2 on PG* variables (PGDATABASE default trails); the backend's
peak is read from /proc/<its pid>/status after the call (the session stays open), the
service's from the process listening on [service] port (``--service-pid``, or found with
``pgrep``). Needs to run on the database server's machine, as a user who may read /proc of
the postgres processes (root here). Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import psycopg2


def peak_mib(pid: int) -> float:
    """VmHWM (peak resident set) of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="frappe15")
    parser.add_argument("--budget", type=float, default=90)
    parser.add_argument("--mode", default="backend", choices=("backend", "service"))
    parser.add_argument("--service-pid", type=int)
    args = parser.parse_args()
    os.environ.setdefault("PGDATABASE", "trails")
    service_pid = args.service_pid
    if args.mode == "service" and service_pid is None:
        service_pid = int(subprocess.check_output(["pgrep", "-f", "trails.refinement.service"]).split()[0])
    connection = psycopg2.connect("")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        before = peak_mib(backend)
        started = time.monotonic()
        cursor.execute("SELECT best_arch, test_auc, k_refined, elapsed_s FROM model_selection(%s, %s,"
                       " refinement => %s, warm_start => false)", (args.dataset, args.budget, args.mode))
        row = cursor.fetchone()
        seconds = time.monotonic() - started
        cursor.execute(f"SELECT (SELECT count(*) FROM {args.dataset}_train) + (SELECT count(*) FROM "
                       f"{args.dataset}_valid), (SELECT count(*) FROM trails.describe(%s) WHERE field IS NOT NULL)",
                       (args.dataset,))
        rows, fields = cursor.fetchone()
    print(f"{args.dataset}, {args.mode}, budget {args.budget:g} s: {row[0]} test AUC {row[1]:.4f}, "
          f"K = {row[2]}, {row[3]:.1f} s in SQL, {seconds:.1f} s wall")
    tensors = rows * (fields * 12 + 8) / 2**20
    print(f"train + valid: {rows:,} rows × {fields} fields = {tensors:,.0f} MiB of tensors "
          "(int64 ids, float32 values, int64 labels)")
    print(f"backend pid {backend}: peak RSS {peak_mib(backend):,.0f} MiB (before the call {before:,.0f} MiB)")
    if service_pid:
        print(f"service pid {service_pid}: peak RSS {peak_mib(service_pid):,.0f} MiB")
    connection.close()


if __name__ == "__main__":
    main()
