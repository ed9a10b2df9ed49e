"""Print the headline numbers of the result CSVs as Markdown tables (what exps/README.md shows).

    python exps/summarize.py [--quick]
"""

from __future__ import annotations

import common


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits=4):
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def correlation(quick: bool) -> None:
    for dataset in ("frappe", "uci_diabetes"):
        path = common.result_path("tfmem_correlation", "csv", quick, dataset)
        if not path.exists():
            continue
        rows = common.read_csv(path)
        last = max(r["epoch"] for r in rows)
        chosen = sorted((r for r in rows if r["epoch"] == last), key=lambda r: -r["spearman"])
        first = {r["metric"]: r for r in rows if r["epoch"] == 1}
        print(f"\n### TFMEM correlation, {dataset} ({int(chosen[0]['n_archs'])} archs, "
              f"valid AUC after epoch {int(last)})\n")
        print(table(["TFMEM", "Spearman ρ", "Kendall τ", "ρ in top 10 %", "ρ vs epoch 1", "ms/arch"],
                    [[r["metric"], fmt(r["spearman"], 3), fmt(r["kendall"], 3), fmt(r["spearman_top10"], 3),
                      fmt(first[r["metric"]]["spearman"], 3), fmt(r["ms_per_arch"], 2)] for r in chosen]))
        truth = common.read_csv(common.results_dir() / (f"{dataset}_groundtruth" + ("_quick" if quick else "") + ".csv"))
        aucs = [r["valid_auc"] for r in truth if r["epoch"] == last]
        seconds = sum(r["train_seconds"] for r in truth if r["epoch"] == last)
        print(f"\nground truth: valid AUC median {common.median_min_max(aucs)[0]:.4f}, range "
              f"{min(aucs):.4f} … {max(aucs):.4f}; {seconds:.0f} s of training in all")


def anytime(quick: bool) -> None:
    for dataset in ("frappe", "uci_diabetes"):
        path = common.result_path("anytime", "csv", quick, dataset)
        if not path.exists():
            continue
        rows = common.read_csv(path)
        budgets = sorted({r["budget_s"] for r in rows})
        out = []
        for system in ("trails", "filtering_only", "training_based"):
            cells = []
            for budget in budgets:
                mine = [r for r in rows if r["system"] == system and r["budget_s"] == budget]
                median, low, high = common.median_min_max(r["test_auc"] for r in mine)
                elapsed = common.median_min_max(r["elapsed_s"] for r in mine)[0]
                cells.append(f"{median:.4f} [{low:.4f}–{high:.4f}] n={len(mine)}, {elapsed:.0f} s")
            out.append([system] + cells)
        print(f"\n### anytime, {dataset}: median test AUC [min–max], seeds, median elapsed\n")
        print(table(["system"] + [f"{b:g} s" for b in budgets], out))
        plans = [r for r in rows if r["system"] == "trails"]
        print("\ntrails plans (budget: K, U per seed): " + "; ".join(
            f"{b:g} s: " + ", ".join(f"K={int(r['k'])} U={int(r['u'])}" for r in plans if r["budget_s"] == b)
            for b in budgets))
        targets = common.result_path("anytime_targets", "csv", quick, dataset)
        if targets.exists():
            trows = common.read_csv(targets)
            levels = sorted({r["target_auc"] for r in trows})
            print("\n" + table(["target test AUC"] + ["trails", "filtering_only", "training_based", "ratio c/a"],
                               [[fmt(level, 3)] + [fmt(next(r["first_budget_s"] for r in trows if r["target_auc"] == level
                                                             and r["system"] == s), 0)
                                                   for s in ("trails", "filtering_only", "training_based")]
                                + [fmt(next(r["training_based_over_trails"] for r in trows
                                            if r["target_auc"] == level and r["system"] == "trails"), 2)]
                                for level in levels]))


def nku(quick: bool) -> None:
    path = common.result_path("nku_tradeoff", "csv", quick)
    if not path.exists():
        return
    rows = common.read_csv(path)
    print(f"\n### N/K/U at {rows[0]['budget_s']:g} s (frappe): test AUC (* = stopped at the budget)\n")
    print(table(["N", "K", "U", "N/K", "test AUC", "epochs trained / planned", "winner"],
                [[int(r["n"]), int(r["k"]), int(r["u"]), int(r["ratio"]),
                  fmt(r["test_auc"]) + ("*" if r["deadline_hit"] == "True" else ""),
                  f"{int(r['trained_epochs'])}/{int(r['planned_epochs'])}", r["best_arch"]] for r in rows]))


def latency(quick: bool) -> None:
    path = common.result_path("filtering_latency", "csv", quick)
    if not path.exists():
        return
    rows = common.read_csv(path)
    print("\n### filtering latency (median of repeats), seconds: read + score = total\n")
    out = []
    for tfmem in sorted({r["tfmem"] for r in rows}):
        for n in sorted({r["n"] for r in rows if r["tfmem"] == tfmem}):
            cells = []
            for where in ("in_db", "out_of_db"):
                mine = [r for r in rows if r["tfmem"] == tfmem and r["n"] == n and r["path"] == where]
                read, score, total = (common.median_min_max(r[k] for r in mine)[0]
                                      for k in ("read_s", "score_s", "total_s"))
                cells.append((read, score, total))
            out.append([tfmem, int(n)] + [f"{c[0]:.3f} + {c[1]:.3f} = {c[2]:.3f}" for c in cells]
                       + [f"{cells[1][2] / cells[0][2]:.2f}x"])
    print(table(["TFMEM", "archs", "in-DB (SPI)", "out-of-DB (psycopg2)", "out / in"], out))


def adherence(quick: bool) -> None:
    path = common.result_path("budget_adherence", "csv", quick)
    if not path.exists():
        return
    rows = common.read_csv(path)
    within = sum(r["within_limit"] == "True" for r in rows)
    under = sum(r["elapsed_s"] <= r["budget_s"] for r in rows)
    print(f"\n### budget adherence: {within}/{len(rows)} within budget × 1.05 + 2 s, {under}/{len(rows)} "
          "within the budget itself\n")
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        for budget in sorted({r["budget_s"] for r in rows if r["dataset"] == dataset}):
            mine = [r for r in rows if r["dataset"] == dataset and r["budget_s"] == budget]
            out.append([dataset, f"{budget:g}", ", ".join(f"{r['elapsed_s']:.1f}" for r in mine),
                        ", ".join(f"{r['wall_s']:.1f}" for r in mine),
                        f"{max(r['elapsed_s'] / budget for r in mine):.3f}"])
    print(table(["dataset", "budget s", "elapsed_s (function)", "client wall s", "max elapsed/budget"], out))


def gbdt(quick: bool) -> None:
    path = common.result_path("gbdt_baseline", "csv", quick)
    if not path.exists():
        return
    rows = common.read_csv(path)
    print("\n### GBDT baseline vs trails\n")
    print(table(["dataset", "model", "test AUC", "valid AUC", "fit / elapsed s", "tuning s", "params"],
                [[r["dataset"], r["model"], fmt(r["test_auc"]), fmt(r["valid_auc"]), fmt(r["fit_s"], 1),
                  fmt(r["tuning_s"], 1) if r["tuning_s"] != "" else "", str(r["params"]).replace("|", "/")]
                 for r in rows]))


def main() -> int:
    p = common.parser(__doc__.split("\n")[0])
    args = p.parse_args()
    for part in (correlation, anytime, nku, latency, adherence, gbdt):
        part(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
