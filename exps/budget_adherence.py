"""Experiment 5: does ``model_selection`` finish within its budget?

Elapsed seconds (the function's own clock, from its call to its row, which includes reading
the data, profiling, filtering, refinement, the test evaluation and storing the model) and the
client's wall seconds, against the budget: a y = x plot with the tolerance the tests use,
``budget × 1.05 + 2``. The runs are the ``trails`` runs of ``anytime_<dataset>.csv``
(experiment 2) when that file exists for the datasets given; otherwise model_selection is run
here at ``--budgets`` (``refinement => 'backend'``).

    python exps/budget_adherence.py [--datasets frappe uci_diabetes] [--budgets 10 20 40] [--quick]
"""

from __future__ import annotations

import common
import systems
from common import log

COLUMNS = ["dataset", "budget_s", "seed", "elapsed_s", "wall_s", "limit_s", "within_limit",
           "test_auc", "k", "u", "source"]


def limit(budget: float) -> float:
    return budget * 1.05 + 2


def plot(rows, path) -> None:
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 5))
    import numpy as np

    xs = np.geomspace(min(r["budget_s"] for r in rows) / 1.3, max(r["budget_s"] for r in rows) * 1.3, 50)
    axis.plot(xs, xs, "k-", linewidth=0.8, label="elapsed = budget")
    axis.plot(xs, [limit(x) for x in xs], "k:", linewidth=0.8, label="budget × 1.05 + 2 s")
    for dataset, marker in zip(sorted({r["dataset"] for r in rows}), "os^v"):
        mine = [r for r in rows if r["dataset"] == dataset]
        axis.scatter([r["budget_s"] for r in mine], [r["elapsed_s"] for r in mine], marker=marker,
                     label=f"{dataset}: elapsed_s (function)", alpha=0.7)
        axis.scatter([r["budget_s"] for r in mine], [r["wall_s"] for r in mine], marker="x",
                     label=f"{dataset}: client wall time", alpha=0.7)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("budget (s)")
    axis.set_ylabel("elapsed (s)")
    axis.set_title("model_selection: elapsed vs budget")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3, which="both")
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["frappe", "uci_diabetes"])
    p.add_argument("--budgets", type=float, nargs="+", default=None)
    p.add_argument("--refinement", default="backend", choices=("backend", "service", "auto"))
    args = p.parse_args()
    common.setup(args)
    log(f"budget_adherence: {common.stamp()}")
    rows = []
    for dataset in args.datasets:
        source = common.result_path("anytime", "csv", args.quick, dataset)
        if not source.exists():
            continue
        for r in common.read_csv(source):
            if r["system"] == "trails":
                rows.append(dict(r, source=source.name))
    if not rows:
        budgets = args.budgets or ([15] if args.quick else [10, 20, 40])
        connection = common.connect()
        systems.prepare_backend(connection, args.threads)
        for budget in budgets:
            for seed in range(args.seeds or 1):
                result = systems.trails_sql(connection, "frappe", budget, "label", seed, args.refinement)
                rows.append(dict(result, dataset="frappe", budget_s=budget, seed=seed, source="this run"))
    for r in rows:
        r["limit_s"] = limit(r["budget_s"])
        r["within_limit"] = r["elapsed_s"] <= r["limit_s"]
    common.write_csv(common.result_path("budget_adherence", "csv", args.quick), rows, COLUMNS)
    worst = max(rows, key=lambda r: r["elapsed_s"] / r["budget_s"])
    log(f"{sum(r['within_limit'] for r in rows)}/{len(rows)} runs within budget × 1.05 + 2 s; "
        f"{sum(r['elapsed_s'] <= r['budget_s'] for r in rows)}/{len(rows)} within the budget itself; "
        f"worst elapsed/budget {worst['elapsed_s'] / worst['budget_s']:.3f} "
        f"({worst['dataset']}, {worst['budget_s']:g} s)")
    plot(rows, common.result_path("budget_adherence", "png", args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
