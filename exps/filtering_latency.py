"""Experiment 4: filtering latency in the database vs out of it, split into reading rows and
scoring archs, for 500 … 5,000 archs.

In-DB: ``SELECT * FROM benchmark_filtering_latency_in_db(n, dataset, 32, tfmem)`` (rows through
SPI, scoring in the backend). Out-of-DB: ``scripts/bench_filtering_out_db.py`` (the same
filtering code, rows through psycopg2; a fresh process per configuration, its interpreter start
and imports not counted). Both run ``--repeats`` times after one warm-up; the median is
plotted. ExpressFlow (data-agnostic: reads only the layout) and NASWOT (data-dependent: reads
32 rows, scores each arch on them) are measured. Both paths get ``--threads`` torch threads.

    python exps/filtering_latency.py [--ns 500 1000 2000 5000] [--tfmems express_flow nas_wot] [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys

import common
from common import log

COLUMNS = ["dataset", "tfmem", "n", "path", "repeat", "read_s", "score_s", "total_s", "archs_per_s"]


def in_db(connection, dataset: str, n: int, tfmem: str, label: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT read_s, score_s, total_s, archs_per_s FROM "
                       "benchmark_filtering_latency_in_db(%s, %s, 32, %s, %s)", (n, dataset, tfmem, label))
        read_s, score_s, total_s, rate = cursor.fetchone()
    return {"read_s": read_s, "score_s": score_s, "total_s": total_s, "archs_per_s": rate}


def out_of_db(dataset: str, n: int, tfmem: str, label: str, repeats: int, threads: int) -> list[dict]:
    """``repeats`` + 1 runs in one fresh process; the first (warm-up) is dropped."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    output = subprocess.run(
        [sys.executable, str(common.REPO / "scripts" / "bench_filtering_out_db.py"), "--dataset", dataset,
         "--n", str(n), "--tfmem", tfmem, "--label", label, "--repeats", str(repeats + 1)],
        env=env, check=True, capture_output=True, text=True).stdout
    runs = []
    for line in output.strip().splitlines()[1:]:
        read_s, score_s, total_s, rate = (float(x) for x in line.split())
        runs.append({"read_s": read_s, "score_s": score_s, "total_s": total_s, "archs_per_s": rate})
    return runs


def plot(rows, tfmems, ns, dataset, path) -> None:
    import numpy as np

    plt = common.pyplot()
    figure, axes = plt.subplots(1, len(tfmems), figsize=(5.5 * len(tfmems), 4.2), squeeze=False)
    for axis, tfmem in zip(axes[0], tfmems):
        positions = np.arange(len(ns))
        for offset, where, hatch in ((-0.2, "in_db", None), (0.2, "out_of_db", "//")):
            read = [common.median_min_max(r["read_s"] for r in rows if r["tfmem"] == tfmem
                                          and r["n"] == n and r["path"] == where)[0] for n in ns]
            score = [common.median_min_max(r["score_s"] for r in rows if r["tfmem"] == tfmem
                                           and r["n"] == n and r["path"] == where)[0] for n in ns]
            label = "in-DB (SPI)" if where == "in_db" else "out-of-DB (psycopg2)"
            axis.bar(positions + offset, read, 0.38, color="tab:orange", hatch=hatch, edgecolor="black",
                     label=f"{label}: read")
            axis.bar(positions + offset, score, 0.38, bottom=read, color="tab:blue", hatch=hatch,
                     edgecolor="black", label=f"{label}: score")
        axis.set_xticks(positions, [str(n) for n in ns])
        axis.set_xlabel("archs scored")
        axis.set_ylabel("seconds (median)")
        axis.set_title(f"filtering latency, {tfmem}, {dataset}")
        axis.legend(fontsize=7)
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0], dataset=True)
    p.add_argument("--ns", type=int, nargs="+", default=None)
    p.add_argument("--tfmems", nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=None, help="timed runs per point (full 3, quick 1)")
    args = p.parse_args()
    common.setup(args)
    ns = args.ns or ([500, 1000] if args.quick else [500, 1000, 2000, 5000])
    tfmems = args.tfmems or (["express_flow", "nas_wot"])
    repeats = args.repeats or (1 if args.quick else 3)
    if args.quick:
        ns_for = {"express_flow": ns, "nas_wot": ns[:1]}
    else:
        ns_for = {tfmem: ns for tfmem in tfmems}
    log(f"filtering_latency on {args.dataset}: n {ns}, {tfmems}, {repeats} repeats; {common.stamp()}")
    connection = common.connect()
    common.backend_threads(connection, args.threads)
    dataset_tag = None if args.dataset == "frappe" else args.dataset
    path = common.result_path("filtering_latency", "csv", args.quick, dataset_tag)
    rows = []
    for tfmem in tfmems:
        for n in ns_for.get(tfmem, ns):
            in_db(connection, args.dataset, n, tfmem, args.label)  # warm-up
            for repeat in range(repeats):
                rows.append(dict(in_db(connection, args.dataset, n, tfmem, args.label), path="in_db",
                                 repeat=repeat, tfmem=tfmem, n=n, dataset=args.dataset))
            for repeat, run in enumerate(out_of_db(args.dataset, n, tfmem, args.label, repeats, args.threads)):
                rows.append(dict(run, path="out_of_db", repeat=repeat, tfmem=tfmem, n=n, dataset=args.dataset))
            medians = {where: common.median_min_max(r["total_s"] for r in rows if r["tfmem"] == tfmem
                                                    and r["n"] == n and r["path"] == where)[0]
                       for where in ("in_db", "out_of_db")}
            log(f"  {tfmem:<13} n={n:>5}: in-DB {medians['in_db']:.3f} s, out-of-DB "
                f"{medians['out_of_db']:.3f} s (out/in {medians['out_of_db'] / medians['in_db']:.2f}x)")
            common.write_csv(path, rows, COLUMNS)
    plot(rows, tfmems, ns, args.dataset, common.result_path("filtering_latency", "png", args.quick, dataset_tag))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
