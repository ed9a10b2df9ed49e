"""Peers: trails against what a user would pick instead, on the same train/valid/test tables.

Systems (``exps/peers_systems.py``): ``trails_auto`` (``model_selection(..., families => 'auto')``),
``trails_mlp`` (``families => 'mlp'``), ``flaml`` (``flaml.AutoML`` with its default estimators,
its budget counting its own psycopg2 read), ``fixed_mlp`` (one fixed MLP trained for the whole
budget). Datasets (``exps/peers_data.py``): frappe, uci_diabetes, fertility, diamonds (regression),
movielens (rating ≥ 4). Metric: ROC-AUC (binary) or R² (regression; RMSE beside it), the same
for selection and test.

For every dataset, budget and seed every system runs once, one after the other, the order
rotated by the seed. Rows → ``peers[_quick].csv``; medians and comparisons →
``peers_summary[_quick].csv`` / ``.md``; median test score vs budget → ``peers[_quick].png``.

    python exps/peers.py [--datasets ...] [--budgets 30 60 120] [--seeds 0 1 2] [--systems ...]
                         [--threads 2] [--quick] [--resume]
"""

from __future__ import annotations

import math
import time

import common
import peers_data
import peers_systems
from common import log

SYSTEMS = ("trails_auto", "trails_mlp", "flaml", "fixed_mlp")
TRAILS_SYSTEMS = ("trails_auto", "trails_mlp")
COLUMNS = ["dataset", "task", "metric", "system", "budget_s", "seed", "test_score", "valid_score",
           "elapsed_s", "winner", "rows", "test_rmse", "wall_s", "read_s", "over_budget", "detail"]
TIE = 0.002  # |difference| within which two medians are a tie (AUC; R² uses the same)
ADHERENCE = (1.05, 2.0)  # a trails call is flagged when wall_s > budget × 1.05 + 2 s


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def over_budget(budget: float, seconds: float) -> bool:
    return seconds > budget * ADHERENCE[0] + ADHERENCE[1]


def split_rows(connection, name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {peers_data.quote(name + '_train')}")
        return int(cursor.fetchone()[0])


def run_one(system: str, args, connection, spec, budget: float, seed: int, families_ok: bool,
            variance: float | None) -> dict | None:
    if system in TRAILS_SYSTEMS:
        family = system.split("_", 1)[1]
        if not families_ok:
            if family != "mlp":
                return None  # the installed extension predates families => ...: nothing to run
            family = None  # today's behaviour: MLPs only
        return peers_systems.trails_call(connection, spec, budget, seed, family, args.refinement, variance)
    if system == "flaml":
        return peers_systems.flaml_run(connection, spec, budget, seed, args.threads)
    return peers_systems.fixed_mlp(spec, budget, seed, tuple(int(w) for w in args.fixed_arch.split("-")))


# --- summary ------------------------------------------------------------------------------

def _median(rows, key="test_score"):
    return common.median_min_max(r[key] for r in rows if isinstance(r.get(key), (int, float)))[0]


def summarize(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Medians per dataset × budget × system, the comparisons, and Markdown lines."""
    table, lines = [], []
    keys = sorted({(r["dataset"], float(r["budget_s"])) for r in rows})
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    lines.append("| dataset | metric | budget s | " + " | ".join(systems) + " |")
    lines.append("|---|---|---|" + "---|" * len(systems))
    for dataset, budget in keys:
        cell = [r for r in rows if r["dataset"] == dataset and float(r["budget_s"]) == budget]
        metric = cell[0]["metric"]
        medians = {}
        for system in systems:
            mine = [r for r in cell if r["system"] == system]
            if not mine:
                continue
            medians[system] = _median(mine)
            table.append({"dataset": dataset, "metric": metric, "budget_s": budget, "system": system,
                          "n": len(mine), "median_test": medians[system],
                          "min_test": common.median_min_max(r["test_score"] for r in mine)[1],
                          "median_elapsed_s": _median(mine, "elapsed_s"),
                          "median_test_rmse": _median(mine, "test_rmse") if metric == "r2" else ""})
        lines.append(f"| {dataset} | {metric} | {budget:g} | "
                     + " | ".join(f"{medians[s]:.4f}" if s in medians else "" for s in systems) + " |")
    lines += ["", "| dataset | budget s | comparison | difference | ratio | verdict |", "|---|---|---|---|---|---|"]
    for dataset, budget in keys:
        cell = [t for t in table if t["dataset"] == dataset and t["budget_s"] == budget]
        medians = {t["system"]: t["median_test"] for t in cell}
        for mine in TRAILS_SYSTEMS:
            for other in ("flaml", "fixed_mlp"):
                if mine not in medians or other not in medians:
                    continue
                a, b = medians[mine], medians[other]
                if math.isnan(a) or math.isnan(b):
                    continue
                difference = a - b
                verdict = "tie" if abs(difference) <= TIE else (f"{mine} better" if difference > 0 else f"{other} better")
                ratio = a / b if b else float("nan")
                table.append({"dataset": dataset, "budget_s": budget, "system": f"{mine} vs {other}",
                              "difference": difference, "ratio": ratio, "verdict": verdict})
                lines.append(f"| {dataset} | {budget:g} | {mine} − {other} | {difference:+.4f} | {ratio:.4f} | {verdict} |")
    lines += ["", "worst of seeds vs median (test score), trails at 60 s:"]
    for dataset in sorted({r["dataset"] for r in rows}):
        for system in TRAILS_SYSTEMS:
            mine = [r for r in rows if r["dataset"] == dataset and r["system"] == system
                    and float(r["budget_s"]) == 60.0]
            if mine:
                median, low, _ = common.median_min_max(r["test_score"] for r in mine)
                table.append({"dataset": dataset, "budget_s": 60.0, "system": system, "n": len(mine),
                              "worst_gap_to_median": median - low})
                lines.append(f"* {dataset} {system}: median {median:.4f}, worst {low:.4f}, gap {median - low:.4f} (n={len(mine)})")
    flagged = [r for r in rows if r["system"] in TRAILS_SYSTEMS and str(r.get("over_budget")) in ("True", "1", "1.0")]
    lines += ["", f"trails calls over budget × {ADHERENCE[0]} + {ADHERENCE[1]:g} s: {len(flagged)} of "
                  f"{sum(r['system'] in TRAILS_SYSTEMS for r in rows)}"]
    lines += [f"* {r['dataset']} {r['system']} {float(r['budget_s']):g} s seed {int(r['seed'])}: "
              f"{float(r['wall_s']):.1f} s" for r in flagged]
    return table, lines


def plot(rows: list[dict], path) -> None:
    plt = common.pyplot()
    datasets = sorted({r["dataset"] for r in rows})
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        for system in SYSTEMS:
            budgets = sorted({float(r["budget_s"]) for r in mine if r["system"] == system})
            if budgets:
                axis.plot(budgets, [_median([r for r in mine if r["system"] == system
                                             and float(r["budget_s"]) == b]) for b in budgets],
                          "o-", label=system)
        budgets = sorted({float(r["budget_s"]) for r in mine})
        axis.set_xscale("log")
        axis.set_xticks(budgets, [f"{b:g}" for b in budgets])
        axis.minorticks_off()
        axis.set_xlabel("time budget (s)")
        axis.set_ylabel(f"median test {'ROC-AUC' if mine[0]['metric'] == 'roc_auc' else 'R²'}")
        axis.set_title(dataset, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0])
    p.set_defaults(threads=2)
    next(a for a in p._actions if a.dest == "threads").help = (
        "torch threads here and in the backend, and FLAML's n_jobs (default 2)")
    p.add_argument("--datasets", nargs="+", default=list(peers_data.DATASETS), choices=list(peers_data.DATASETS))
    p.add_argument("--budgets", type=float, nargs="+", default=None, help="seconds (default 30 60 120)")
    seeds_action = next(a for a in p._actions if a.dest == "seeds")  # common's: a count; here: the seeds
    seeds_action.nargs, seeds_action.help = "+", "seeds (default 0 1 2; --quick: 0)"
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--refinement", default="backend", choices=("backend", "service", "auto"))
    p.add_argument("--fixed-arch", default="-".join(map(str, peers_systems.FIXED_ARCH)))
    p.add_argument("--resume", action="store_true", help="keep the runs already in the CSV")
    args = p.parse_args()
    common.setup(args)
    budgets = args.budgets or ([20.0] if args.quick else [30.0, 60.0, 120.0])
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    log(f"peers: {args.datasets}, budgets {budgets}, seeds {seeds}, {args.systems}, "
        f"{args.threads} threads; {common.stamp()}")
    path = common.result_path("peers", "csv", args.quick)
    rows = common.read_csv(path) if args.resume and path.exists() else []
    done = {(r["dataset"], r["system"], float(r["budget_s"]), int(r["seed"])) for r in rows}

    connection = common.connect()
    peers_data.ensure_tabular(connection, args.datasets)
    families_ok = peers_systems.families_supported(connection)
    if any(s in TRAILS_SYSTEMS for s in args.systems):
        common.backend_threads(connection, args.threads)
        if not families_ok:
            log("the installed model_selection has no `families` argument: trails_auto is skipped, "
                "trails_mlp is called without it (MLPs only, today's behaviour)")
    for dataset in args.datasets:
        spec = peers_data.DATASETS[dataset]
        n_rows = split_rows(connection, dataset)
        variance = peers_data.label_variance(connection, spec) if spec.task == "regression" else None
        for budget in budgets:
            for seed in seeds:
                shift = seed % len(args.systems)
                for system in args.systems[shift:] + args.systems[:shift]:
                    if (dataset, system, float(budget), seed) in done:
                        continue
                    result = run_one(system, args, connection, spec, budget, seed, families_ok, variance)
                    if result is None:
                        continue
                    row = dict(result, dataset=dataset, task=spec.task, metric=spec.metric, system=system,
                               budget_s=float(budget), seed=seed, rows=n_rows,
                               over_budget=over_budget(budget, result["wall_s"]))
                    rows.append(row)
                    log(f"{dataset} {system:<11} {budget:>5g} s seed {seed}: test {spec.metric} "
                        f"{row['test_score']:.4f} (valid {_fmt(row['valid_score'])})"
                        f" elapsed {row['elapsed_s']:.1f} s wall {row['wall_s']:.1f} s — {row['winner']}")
                    if system in TRAILS_SYSTEMS and row["over_budget"]:
                        log(f"  WARNING: over budget × {ADHERENCE[0]} + {ADHERENCE[1]:g} s ({row['wall_s']:.1f} s)")
                    common.write_csv(path, rows, COLUMNS)
    if not rows:
        log("no runs")
        return 1
    table, lines = summarize(rows)
    common.write_csv(common.result_path("peers_summary", "csv", args.quick), table,
                     ["dataset", "metric", "budget_s", "system", "n", "median_test", "min_test",
                      "median_elapsed_s", "median_test_rmse", "difference", "ratio", "verdict",
                      "worst_gap_to_median"])
    markdown = common.result_path("peers_summary", "md", args.quick)
    markdown.write_text(f"<!-- {common.stamp()} -->\n" + "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    plot(rows, common.result_path("peers", "png", args.quick))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    log(f"peers done in {time.monotonic() - started:.0f} s")
    raise SystemExit(code)
