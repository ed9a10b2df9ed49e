"""Experiment 6: a gradient-boosted-trees baseline on the same splits.

``sklearn.ensemble.HistGradientBoostingClassifier`` reads the same tables through the same
layout as trails (``trails.data.layout``): every field becomes one column. Categorical fields are
**ordinal-encoded** with the layout's dictionary codes (enum order for frappe; most frequent
first for text columns); a field with at most 254 codes (+ unknown) uses HGB's native
categorical splits, a larger one (frappe's user and item, diabetes' diagnosis codes) is kept as
an ordinal number. Numeric fields are the raw standardised value; missing values are NaN
(HGB's missing-value branch).

* ``hgb_default``: defaults (max_iter 100, early stopping on 10 % of train), ``random_state=0``;
* ``hgb_tuned``: learning_rate × max_leaf_nodes grid (full: {0.05, 0.1, 0.2} × {31, 127},
  max_iter 1000, early stopping with 20 rounds' patience), chosen by valid AUC; ``fit_s`` is
  the chosen model's fit, ``tuning_s`` the whole grid.

Beside them: trails' model_selection at the largest budget of ``anytime_<dataset>.csv`` run
with every seed (median over the seeds), or one call at ``--budget`` when that file is absent.
Threads: ``--threads`` for HGB's OpenMP pool (threadpoolctl), as for torch elsewhere.

    python exps/gbdt_baseline.py [--datasets frappe uci_diabetes] [--quick]
"""

from __future__ import annotations

import itertools
import time

import numpy as np

import common
import systems
from common import log

COLUMNS = ["dataset", "model", "test_auc", "valid_auc", "fit_s", "tuning_s", "params", "train_rows"]


def features(splits, split) -> tuple[np.ndarray, np.ndarray]:
    """(X float64 (N, F), y) of ``split`` with the encoding of the module docstring."""
    ids, values = split.ids.numpy(), split.values.numpy()
    columns = []
    for i, field in enumerate(splits.layout.fields):
        missing = ids[:, i] == field.missing_id
        if field.kind == "numeric":
            column = values[:, i].astype(np.float64)
        else:
            column = (ids[:, i] - field.first_id).astype(np.float64)
            column[ids[:, i] == field.unknown_id] = field.cardinality
        column[missing] = np.nan
        columns.append(column)
    return np.stack(columns, axis=1), split.labels.numpy()


def categorical_mask(splits) -> np.ndarray:
    return np.array([f.kind == "categorical" and f.cardinality + 1 <= 254 for f in splits.layout.fields])


def fit(params: dict, mask, X, y, Xv, yv, Xt, yt) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    model = HistGradientBoostingClassifier(categorical_features=mask, random_state=0, **params)
    started = time.monotonic()
    model.fit(X, y)
    fit_s = time.monotonic() - started
    return {"valid_auc": float(roc_auc_score(yv, model.predict_proba(Xv)[:, 1])),
            "test_auc": float(roc_auc_score(yt, model.predict_proba(Xt)[:, 1])),
            "fit_s": fit_s, "params": common.dump_json(dict(params, n_iter=int(model.n_iter_)))}


def trails_row(dataset: str, args) -> dict:
    source = common.result_path("anytime", "csv", args.quick, dataset)
    runs = [r for r in common.read_csv(source) if r["system"] == "trails"] if source.exists() else []
    if runs:  # the largest budget among those run with the most seeds
        counts = {b: sum(r["budget_s"] == b for r in runs) for b in {r["budget_s"] for r in runs}}
        budget = max(b for b, count in counts.items() if count == max(counts.values()))
        chosen = [r for r in runs if r["budget_s"] == budget]
        test = common.median_min_max(r["test_auc"] for r in chosen)[0]
        valid = common.median_min_max(r["valid_auc"] for r in chosen)[0]
        elapsed = common.median_min_max(r["elapsed_s"] for r in chosen)[0]
        note = f"median of {len(chosen)} runs in {source.name}"
    else:
        budget = args.budget or (8.0 if args.quick else 40.0)
        connection = common.connect()
        systems.prepare_backend(connection, args.threads)
        result = systems.trails_sql(connection, dataset, budget, common.LABELS.get(dataset, "label"), 0)
        test, valid, elapsed, note = result["test_auc"], result["valid_auc"], result["elapsed_s"], "one run"
    return {"dataset": dataset, "model": f"trails_model_selection_{budget:g}s", "test_auc": test,
            "valid_auc": valid, "fit_s": elapsed, "tuning_s": "", "params": note}


def main() -> int:
    from threadpoolctl import threadpool_limits

    p = common.parser(__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["frappe", "uci_diabetes"])
    p.add_argument("--budget", type=float, default=None, help="model_selection budget when no anytime CSV")
    args = p.parse_args()
    common.setup(args)
    log(f"gbdt_baseline: {common.stamp()}")
    grid = ({"learning_rate": [0.1, 0.2], "max_leaf_nodes": [31], "max_iter": [100]} if args.quick else
            {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [31, 127], "max_iter": [1000]})
    rows = []
    with threadpool_limits(limits=args.threads):
        for dataset in args.datasets:
            splits = common.load_splits(dataset, common.LABELS.get(dataset, "label"))
            X, y = features(splits, splits.train)
            if args.quick:
                X, y = X[:20000], y[:20000]
            Xv, yv = features(splits, splits.valid)
            Xt, yt = features(splits, splits.test)
            mask = categorical_mask(splits)
            log(f"{dataset}: {X.shape[0]} train rows, {mask.sum()} native categorical of {len(mask)} columns")
            default = fit({}, mask, X, y, Xv, yv, Xt, yt)
            rows.append(dict(default, dataset=dataset, model="hgb_default", tuning_s="", train_rows=len(y)))
            started, best = time.monotonic(), None
            for lr, leaves, iters in itertools.product(*grid.values()):
                result = fit({"learning_rate": lr, "max_leaf_nodes": leaves, "max_iter": iters,
                              "early_stopping": True, "n_iter_no_change": 20}, mask, X, y, Xv, yv, Xt, yt)
                log(f"  lr {lr} leaves {leaves}: valid {result['valid_auc']:.4f} ({result['fit_s']:.1f} s)")
                if best is None or result["valid_auc"] > best["valid_auc"]:
                    best = result
            rows.append(dict(best, dataset=dataset, model="hgb_tuned", tuning_s=time.monotonic() - started,
                             train_rows=len(y)))
            rows.append(dict(trails_row(dataset, args), train_rows=len(splits.train)))
            for r in rows[-3:]:
                log(f"  {r['model']:<32} test AUC {r['test_auc']:.4f} valid {r['valid_auc']:.4f} "
                    f"fit {r['fit_s']:.1f} s")
    common.write_csv(common.result_path("gbdt_baseline", "csv", args.quick), rows, COLUMNS)

    plt = common.pyplot()
    figure, axes = plt.subplots(1, len(args.datasets), figsize=(5 * len(args.datasets), 3.8), squeeze=False)
    for axis, dataset in zip(axes[0], args.datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        bars = axis.bar(range(len(mine)), [r["test_auc"] for r in mine],
                        color=["tab:green", "tab:olive", "tab:blue"][:len(mine)])
        for bar, r in zip(bars, mine):
            axis.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                      f"{r['test_auc']:.4f}\n{r['fit_s']:.0f} s", ha="center", va="bottom", fontsize=8)
        axis.set_xticks(range(len(mine)), [r["model"].replace("trails_model_selection_", "trails ")
                                           for r in mine], fontsize=8)
        low = min(r["test_auc"] for r in mine)
        axis.set_ylim(max(0.5, low - 0.05), min(1.0, max(r["test_auc"] for r in mine) + 0.03))
        axis.set_ylabel("test AUC")
        axis.set_title(f"{dataset}: GBDT vs trails (seconds = fit / elapsed)", fontsize=9)
    common.save_figure(figure, common.result_path("gbdt_baseline", "png", args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
