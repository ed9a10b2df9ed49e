"""Experiment 2 (and 7): test AUC reached within a wall-clock budget, for three systems.

* ``trails`` — (a) ``model_selection`` in the database (2-phase), ``refinement => 'backend'``
  by default (``--refinement service`` uses the refinement service);
* ``filtering_only`` — (b) ExpressFlow scores 5,000 archs, the top-1 is trained for the rest
  of the budget (no refinement among several candidates);
* ``training_based`` — (c) random archs + successive halving sized to the budget, no filtering.

See ``exps/systems.py`` for exact definitions. Every (budget, seed) runs each system once,
interleaved; median and min/max over seeds → ``anytime_<dataset>.csv`` and ``.png``, and
the smallest budget whose median test AUC reaches each target, with the ratio
training_based / trails → ``anytime_<dataset>_targets.csv``.

    python exps/anytime.py --dataset frappe [--budgets 10 20 40 80] [--seeds 3] [--quick]
"""

from __future__ import annotations

import math

import common
import systems
from common import log

SYSTEMS = ("trails", "filtering_only", "training_based")
TARGETS = {"frappe": [0.95, 0.96, 0.97, 0.975, 0.98],
           "uci_diabetes": [0.60, 0.62, 0.64, 0.66, 0.68]}
COLUMNS = ["dataset", "system", "budget_s", "seed", "test_auc", "valid_auc", "elapsed_s", "wall_s",
           "best_arch", "n_scored", "k", "u", "epochs"]


def default_budgets(dataset: str, quick: bool) -> list[float]:
    if quick:
        # reading, profiling and a fresh backend's imports take ~5-9 s of a call here, and a
        # budget that leaves no time to train is refused ("give at least ... s")
        return [15] if dataset == "frappe" else [20]
    return [10, 20, 40, 80] if dataset == "frappe" else [10, 20, 40]


def run_one(system: str, args, splits, connection, budget: float, seed: int) -> dict:
    import time

    if system == "trails":
        return systems.trails_sql(connection, args.dataset, budget, args.label, seed, args.refinement)
    started = time.monotonic()
    function = systems.filtering_only if system == "filtering_only" else systems.training_based
    result = function(splits, budget, seed)
    return dict(result, wall_s=time.monotonic() - started + splits.load_s)


def time_to_targets(rows: list[dict], targets: list[float]) -> list[dict]:
    """For every system and target: the smallest budget whose median test AUC ≥ target."""
    out = []
    budgets = sorted({r["budget_s"] for r in rows})
    for target in targets:
        first = {}
        for system in SYSTEMS:
            for budget in budgets:
                median = common.median_min_max(r["test_auc"] for r in rows
                                               if r["system"] == system and r["budget_s"] == budget)[0]
                if median >= target:
                    first[system] = budget
                    break
        for system in SYSTEMS:
            reached = first.get(system)
            ratio = (first["training_based"] / first["trails"]
                     if system == "trails" and "trails" in first and "training_based" in first else None)
            out.append({"target_auc": target, "system": system,
                        "first_budget_s": reached if reached is not None else "not reached",
                        "training_based_over_trails": ratio if ratio is not None else ""})
    return out


def plot(rows: list[dict], dataset: str, path, targets: list[float]) -> None:
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    labels = {"trails": "(a) TRAILS: model_selection (2-phase)",
              "filtering_only": "(b) filtering only: top-1 by ExpressFlow, trained",
              "training_based": "(c) training-based: random + successive halving"}
    for system in SYSTEMS:
        budgets = sorted({r["budget_s"] for r in rows if r["system"] == system})
        if not budgets:
            continue
        stats = [common.median_min_max(r["test_auc"] for r in rows
                                       if r["system"] == system and r["budget_s"] == b) for b in budgets]
        line, = axis.plot(budgets, [s[0] for s in stats], "o-", label=labels[system])
        axis.fill_between(budgets, [s[1] for s in stats], [s[2] for s in stats],
                          color=line.get_color(), alpha=0.2)
    if dataset == "frappe":
        axis.axhline(0.975, color="grey", linestyle="--", linewidth=0.8, label="AUC 0.975")
    from matplotlib.ticker import NullFormatter

    axis.set_xscale("log")
    budgets = sorted({r["budget_s"] for r in rows})
    axis.set_xticks(budgets, [f"{b:g}" for b in budgets])
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("time budget (s)")
    axis.set_ylabel("test AUC")
    seeds = {b: len({r["seed"] for r in rows if r["budget_s"] == b}) for b in budgets}
    most = max(seeds.values())
    fewer = ", ".join(f"{b:g} s: {n}" for b, n in seeds.items() if n < most)
    axis.set_title(f"anytime performance on {dataset}\n(median and min–max of {most} seed{'s' * (most > 1)}"
                   + (f"; {fewer}" if fewer else "") + ")", fontsize=10)
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(alpha=0.3)
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0], dataset=True)
    p.add_argument("--budgets", type=float, nargs="+", default=None)
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--refinement", default="backend", choices=("backend", "service", "auto"))
    p.add_argument("--resume", action="store_true", help="keep runs already in the CSV")
    args = p.parse_args()
    common.setup(args)
    budgets = args.budgets or default_budgets(args.dataset, args.quick)
    seeds = args.seeds or (1 if args.quick else 3)
    log(f"anytime on {args.dataset}: budgets {budgets}, {seeds} seeds, {args.systems}; {common.stamp()}")
    path = common.result_path("anytime", "csv", args.quick, args.dataset)
    rows = [r for r in common.read_csv(path)] if args.resume and path.exists() else []
    done = {(r["system"], r["budget_s"], int(r["seed"])) for r in rows}

    connection = common.connect()
    systems.prepare_backend(connection, args.threads)
    splits = common.load_splits(args.dataset, args.label) if set(args.systems) - {"trails"} else None
    for seed in range(seeds):
        for budget in budgets:
            for system in args.systems:
                if (system, float(budget), seed) in done:
                    continue
                result = run_one(system, args, splits, connection, budget, seed)
                row = dict(result, dataset=args.dataset, system=system, budget_s=float(budget), seed=seed)
                rows.append(row)
                log(f"{system:<15} budget {budget:>5g} s seed {seed}: test AUC {row['test_auc']:.4f} "
                    f"(valid {row['valid_auc']:.4f}) {row['best_arch']} K={row.get('k')} U={row.get('u')} "
                    f"elapsed {row['elapsed_s']:.1f} s")
                common.write_csv(path, rows, COLUMNS)
    targets = TARGETS.get(args.dataset, [])
    if targets:
        reach = time_to_targets(rows, targets)
        common.write_csv(common.result_path("anytime_targets", "csv", args.quick, args.dataset), reach)
        for r in reach:
            log(f"  target {r['target_auc']}: {r['system']:<15} {r['first_budget_s']}"
                + (f" (ratio {r['training_based_over_trails']:.2f}x)"
                   if isinstance(r["training_based_over_trails"], float) else ""))
    plot(rows, args.dataset, common.result_path("anytime", "png", args.quick, args.dataset), targets)
    for system in args.systems:
        for budget in budgets:
            median, low, high = common.median_min_max(
                r["test_auc"] for r in rows if r["system"] == system and r["budget_s"] == budget)
            if not math.isnan(median):
                log(f"  {system:<15} {budget:>5g} s: median test AUC {median:.4f} [{low:.4f}, {high:.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
