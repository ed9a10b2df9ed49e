"""Experiment 1 (and 7): how well each TFMEM ranks archs by the AUC they reach when trained.

Ground truth: ``--archs`` distinct archs drawn uniformly (seed 0) from the dataset's search
space, each trained ``--epochs`` epochs of ``--iterations`` iterations (batch 512, Adam 1e-3,
cosine decay over the whole run, the product's trainer and model), valid ROC-AUC after every
epoch. Saved as a reusable mini benchmark ``<dataset>_groundtruth.csv`` (arch, epoch,
valid_auc, train_seconds, n_params); with ``--resume`` archs already in it are not retrained.

Every TFMEM of ``trails.tfmem.metric_names()`` then scores the same archs (seed 0; the
data-dependent ones on the first 32 train rows, as filtering does) → ``tfmem_scores_<dataset>.csv``;
Spearman ρ and Kendall τ (scipy.stats) against the valid AUC of each epoch, and ρ among the
archs in the top 10 % by ground truth → ``tfmem_correlation_<dataset>.csv`` + ``.png``. The
parameter count (``n_params``) is ranked the same way, as the baseline a TFMEM should beat.

    python exps/tfmem_correlation.py --dataset frappe [--archs 200 --epochs 2] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import common
from common import log

# TRAILS, frappe, 160K archs, valid AUC at epoch 13 (the paper's benchmark)
TRAILS_SPEARMAN = {"express_flow": 0.803, "synflow": 0.772}


def n_params(arch, in_features: int) -> int:
    widths = (in_features,) + tuple(arch) + (2,)
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def ground_truth(splits, archs, epochs: int, iterations: int, path, resume: bool) -> list[dict]:
    """Train every arch (see the module docstring); rows appended to ``path`` as they finish."""
    from dataclasses import replace

    from trails.families import Candidate
    from trails.space import arch_text
    from trails.refinement.trainer import Trial, evaluate_auc, iterations_per_epoch, train

    columns = ["arch", "epoch", "valid_auc", "train_seconds", "n_params"]
    rows = common.read_csv(path) if resume and path.exists() else []
    rows = [dict(r, arch=str(r["arch"]), epoch=int(r["epoch"])) for r in rows]
    done = {r["arch"] for r in rows if r["epoch"] == epochs}
    rows = [r for r in rows if r["arch"] in done]
    settings = replace(splits.settings, iter_per_epoch=iterations)
    per_epoch = iterations_per_epoch(len(splits.train), settings.batch_size, iterations)
    started = time.monotonic()
    todo = [arch for arch in archs if arch_text(arch) not in done]
    log(f"ground truth: {len(archs)} archs, {len(done)} already trained, {epochs} epochs of "
        f"{per_epoch} iterations (batch {settings.batch_size})")
    for number, arch in enumerate(todo, 1):
        trial = Trial(arch, splits.n_ids, splits.n_fields, epochs * per_epoch, settings,
                      seed=Candidate("mlp", tuple(arch)).seed(0))
        seconds = 0.0
        for epoch in range(1, epochs + 1):
            since = time.monotonic()
            train(trial, splits.train, 1, settings.batch_size, iterations)
            seconds += time.monotonic() - since
            auc = evaluate_auc(trial.model, splits.valid, settings.eval_batch_size)
            rows.append({"arch": arch_text(arch), "epoch": epoch, "valid_auc": auc,
                         "train_seconds": seconds, "n_params": n_params(arch, splits.in_features)})
        common.write_csv(path, rows, columns) if number % 10 == 0 or number == len(todo) else None
        if number % 10 == 0:
            elapsed = time.monotonic() - started
            log(f"  {number}/{len(todo)} trained, {elapsed:.0f} s, "
                f"~{elapsed / number * (len(todo) - number):.0f} s left")
    if not todo:
        common.write_csv(path, rows, columns)
    return rows


def finite(values) -> np.ndarray:
    """Scores with NaN ranked last (a metric that failed on an arch says nothing good of it)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), -np.inf, values)


def correlations(truth: dict, scores: dict, metric: str, epoch: int) -> dict:
    from scipy.stats import kendalltau, spearmanr

    archs = sorted(truth)
    y = np.array([truth[a] for a in archs])
    x = finite([scores[a][metric] for a in archs])
    top = np.argsort(-y)[:max(3, int(round(0.1 * len(archs))))]
    return {"metric": metric, "epoch": epoch, "n_archs": len(archs),
            "spearman": float(spearmanr(x, y).statistic), "kendall": float(kendalltau(x, y).statistic),
            "spearman_top10": float(spearmanr(x[top], y[top]).statistic), "n_top10": len(top)}


def plot(rows: list[dict], dataset: str, epoch: int, archs: int, path) -> None:
    plt = common.pyplot()
    rows = sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["spearman"])
    figure, axis = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.6))
    positions = np.arange(len(rows))
    height = 0.27
    for offset, key, label in ((-height, "spearman", "Spearman ρ"), (0, "kendall", "Kendall τ"),
                               (height, "spearman_top10", "ρ in top 10 %")):
        axis.barh(positions + offset, [r[key] for r in rows], height, label=label)
    if dataset == "frappe":
        for position, row in zip(positions, rows):
            if row["metric"] in TRAILS_SPEARMAN:
                axis.plot(TRAILS_SPEARMAN[row["metric"]], position - height, "k*", markersize=9,
                          label="TRAILS ρ (160K archs, epoch 13)" if row["metric"] == "express_flow" else None)
    axis.set_yticks(positions, [r["metric"] for r in rows])
    axis.axvline(0, color="grey", linewidth=0.8)
    axis.set_xlim(-1, 1)
    axis.set_xlabel("rank correlation with ground-truth valid AUC")
    axis.set_title(f"TFMEMs vs training on {dataset}: {archs} archs, AUC after epoch {epoch}")
    axis.legend(loc="lower right", fontsize=8)
    common.save_figure(figure, path)


def main() -> int:
    p = common.parser(__doc__.split("\n")[0], dataset=True)
    p.add_argument("--archs", type=int, default=None, help="archs trained (full: frappe 200, else 60)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per arch (full 2, quick 1)")
    p.add_argument("--iterations", type=int, default=None, help="iterations per epoch (full 200, quick 40)")
    p.add_argument("--resume", action="store_true", help="keep archs already in the ground-truth CSV")
    args = p.parse_args()
    common.setup(args)
    archs_n = args.archs or ((12 if args.dataset == "frappe" else 8) if args.quick
                             else (200 if args.dataset == "frappe" else 60))
    epochs = args.epochs or (1 if args.quick else 2)
    iterations = args.iterations or (40 if args.quick else 200)
    log(f"tfmem_correlation on {args.dataset}: {common.stamp()}")

    from trails.context import read_scoring_batch
    from trails.space import arch_text
    from trails.tfmem import metric_names, score_archs

    from systems import random_archs

    splits = common.load_splits(args.dataset, args.label)
    archs = random_archs(splits.space, archs_n, seed=0)
    truth_path = common.results_dir() / (f"{args.dataset}_groundtruth" + ("_quick" if args.quick else "") + ".csv")
    rows = ground_truth(splits, archs, epochs, iterations, truth_path, args.resume)

    batch = read_scoring_batch(splits.session, splits.dataset, splits.layout, 32,
                               splits.settings.embedding_dim)
    scores = {arch_text(a): {} for a in archs}
    timing = {}
    for metric in metric_names():
        started = time.monotonic()
        values = score_archs(metric, archs, splits.in_features, 0, batch)
        timing[metric] = (time.monotonic() - started) / len(archs)
        for arch, value in zip(archs, values):
            scores[arch_text(arch)][metric] = float(value)
    common.write_csv(common.result_path("tfmem_scores", "csv", args.quick, args.dataset),
                     [dict({"arch": a}, **s) for a, s in scores.items()], ["arch", *metric_names()])

    # a baseline any TFMEM should beat: the arch's parameter count
    for arch in archs:
        scores[arch_text(arch)]["n_params"] = float(n_params(arch, splits.in_features))
    results = []
    for epoch in range(1, epochs + 1):
        truth = {r["arch"]: r["valid_auc"] for r in rows if r["epoch"] == epoch}
        for metric in metric_names() + ["n_params"]:
            results.append(dict(correlations(truth, scores, metric, epoch),
                                ms_per_arch=1e3 * timing.get(metric, 0.0)))
    common.write_csv(common.result_path("tfmem_correlation", "csv", args.quick, args.dataset), results)
    for r in sorted((r for r in results if r["epoch"] == epochs), key=lambda r: -r["spearman"]):
        log(f"  {r['metric']:<17} ρ {r['spearman']:+.3f}  τ {r['kendall']:+.3f}  "
            f"top-10% ρ {r['spearman_top10']:+.3f}  ({r['ms_per_arch']:.2f} ms/arch)")
    aucs = [r["valid_auc"] for r in rows if r["epoch"] == epochs]
    log(f"  ground truth valid AUC at epoch {epochs}: median {np.median(aucs):.4f}, "
        f"range {min(aucs):.4f} … {max(aucs):.4f}")
    plot(results, args.dataset, epochs, len(archs),
         common.result_path("tfmem_correlation", "png", args.quick, args.dataset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
