"""Experiment 3: how N (archs scored), K (archs refined) and U (first-rung epochs) trade off
at a fixed time budget.

Each cell filters N = ratio · K archs with ExpressFlow (regularized evolution, seed 0) and runs
successive halving (η = 3, at most 27 epochs, warm-started survivors) over the top K from U
epochs, stopped at the budget (the best model evaluated by then wins; ``deadline_hit`` says
so); the winner's test AUC is recorded. Grid: K × U at N/K = 100 (heat map), and N/K at one K
with U = 1. The data is read once per process and not charged (the same for every cell). The
plan model_selection makes for the same budget (``trails.selection.plan_model_selection``,
before it re-plans U) is marked.

    python exps/nku_tradeoff.py [--budget 30] [--ks 3 9 27 81] [--us 1 2 4] [--ratios 1 10 100 1000] [--resume] [--quick]
"""

from __future__ import annotations

import numpy as np

import common
import systems
from common import log

COLUMNS = ["dataset", "budget_s", "n", "k", "u", "ratio", "seed", "test_auc", "valid_auc",
           "best_arch", "filtering_s", "trained_epochs", "planned_epochs", "deadline_hit", "elapsed_s"]


def coordinator_plan(splits, budget: float, tfmem: str = "express_flow") -> dict | None:
    """What model_selection would plan for ``budget`` (``trails.selection.plan_model_selection``:
    t1 and t2 measured now, and its first plan's N, K, U, before the revision with the candidates);
    None, logged with its reason, where model_selection would refuse the budget (the quick
    budget is near the least a slow machine accepts: reading and profiling frappe take 5-9 s)."""
    from trails.errors import TrailsError
    from trails.selection import plan_model_selection

    try:
        plan = plan_model_selection(splits.session, splits.name, budget, splits.label, tfmem)
    except TrailsError as refused:
        log(f"coordinator: model_selection would refuse {budget:g} s: {str(refused).splitlines()[0]}")
        return None
    log(f"coordinator: t1 = {1e3 * plan['t1']:.3f} ms, t2 = {plan['t2']:.2f} s → "
        f"N={plan['initial']['n']}, K={plan['initial']['k']}, U={plan['initial']['u']}")
    return {"t1": plan["t1"], "t2": plan["t2"], **plan["initial"]}


def plot(rows, ks, us, ratios, ratio_k, plan, budget, dataset, path) -> None:
    plt = common.pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [1.3, 1]})
    grid = np.full((len(ks), len(us)), np.nan)
    for r in rows:
        if r["ratio"] == 100 and r["k"] in ks and r["u"] in us:
            grid[ks.index(r["k"]), us.index(r["u"])] = r["test_auc"]
    finite = grid[np.isfinite(grid)]
    image = left.imshow(grid, cmap="viridis", aspect="auto", origin="lower",
                        vmin=finite.min() if finite.size else 0, vmax=finite.max() if finite.size else 1)
    for i in range(len(ks)):
        for j in range(len(us)):
            if np.isfinite(grid[i, j]):
                hit = any(r["k"] == ks[i] and r["u"] == us[j] and r["ratio"] == 100 and r["deadline_hit"]
                          for r in rows)
                left.text(j, i, f"{grid[i, j]:.4f}" + ("*" if hit else ""), ha="center", va="center",
                          color="white" if grid[i, j] < (finite.min() + finite.max()) / 2 else "black",
                          fontsize=9)
    left.set_xticks(range(len(us)), [str(u) for u in us])
    left.set_yticks(range(len(ks)), [f"{k} (N={100 * k})" for k in ks])
    left.set_xlabel("U (epochs per model in the first rung)")
    left.set_ylabel("K (N = 100·K)")
    planned = (f"model_selection plans N={plan['n']}, K={plan['k']}, U={plan['u']}" if plan
               else "model_selection refuses this budget")
    left.set_title(f"test AUC at a {budget:g} s budget ({dataset})\n* = stopped at the budget; {planned}",
                   fontsize=9)
    figure.colorbar(image, ax=left)
    selected = sorted((r for r in rows if r["k"] == ratio_k and r["u"] == 1), key=lambda r: r["ratio"])
    selected = list({r["ratio"]: r for r in selected}.values())
    right.plot([r["ratio"] for r in selected], [r["test_auc"] for r in selected], "o-")
    from matplotlib.ticker import NullFormatter

    right.set_xscale("log")
    right.set_xticks(ratios, [str(r) for r in ratios])
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel(f"N/K (K = {ratio_k}, U = 1)")
    right.set_ylabel("test AUC")
    right.set_title("archs scored per arch refined", fontsize=9)
    right.grid(alpha=0.3)
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0], dataset=True)
    p.add_argument("--budget", type=float, default=None, help="seconds per cell (full 30, quick 8)")
    p.add_argument("--ks", type=int, nargs="+", default=None)
    p.add_argument("--us", type=int, nargs="+", default=None)
    p.add_argument("--ratios", type=int, nargs="+", default=None)
    p.add_argument("--ratio-k", type=int, default=None, help="K of the N/K sweep (full 9, quick 3)")
    p.add_argument("--resume", action="store_true", help="keep cells already in the CSV (same budget)")
    args = p.parse_args()
    common.setup(args)
    budget = args.budget or (8.0 if args.quick else 30.0)
    ks = args.ks or ([3, 9] if args.quick else [3, 9, 27, 81])
    us = args.us or ([1, 2] if args.quick else [1, 2, 4])
    ratios = args.ratios or ([10, 100] if args.quick else [1, 10, 100, 1000])
    ratio_k = args.ratio_k or (3 if args.quick else 9)
    seed = 0
    log(f"nku_tradeoff on {args.dataset}: {budget:g} s per cell, K {ks}, U {us}, N/K {ratios} "
        f"at K={ratio_k}; {common.stamp()}")
    splits = common.load_splits(args.dataset, args.label)
    plan = coordinator_plan(splits, budget)
    cells = [(100 * k, k, u) for k in ks for u in us]
    cells += [(ratio * ratio_k, ratio_k, 1) for ratio in ratios if (ratio * ratio_k, ratio_k, 1) not in cells]
    dataset_tag = None if args.dataset == "frappe" else args.dataset
    path = common.result_path("nku_tradeoff", "csv", args.quick, dataset_tag)
    rows = [r for r in common.read_csv(path) if r["budget_s"] == budget] if args.resume and path.exists() else []
    for r in rows:
        r["deadline_hit"] = r["deadline_hit"] in (True, "True")
        for key in ("n", "k", "u", "ratio", "seed", "trained_epochs", "planned_epochs"):
            r[key] = int(r[key])
    done = {(int(r["n"]), int(r["k"]), int(r["u"])) for r in rows}
    for n, k, u in cells:
        if (n, k, u) in done:
            continue
        result = systems.fixed_plan(splits, budget, n, k, u, seed)
        rows.append(dict(result, dataset=args.dataset, budget_s=budget, n=n, k=k, u=u,
                         ratio=n // k, seed=seed))
        common.write_csv(path, rows, COLUMNS)
    plot(rows, ks, us, ratios, ratio_k, plan, budget, args.dataset,
         common.result_path("nku_tradeoff", "png", args.quick, dataset_tag))
    best = max(rows, key=lambda r: r["test_auc"])
    log(f"best cell: N={best['n']} K={best['k']} U={best['u']}: test AUC {best['test_auc']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
