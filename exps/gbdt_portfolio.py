"""The trees portfolio's evidence: LightGBM configurations alone, early-stopped, on each table.

For every dataset of the peers benchmark (``peers_data.DATASETS``), the splits are read as
trails reads them (layout, ``trails.refinement.data.load_split``) and turned into the trees'
feature matrix (``trails.families.gbdt_features``: categorical fields as LightGBM categorical
features, numeric fields as numbers, NULL as missing) — exactly what a trees candidate of a run
sees. Each configuration (the portfolio's, and a few alternatives) is trained by
``lightgbm.train`` on train, early-stopped on the whole valid split (patience 50 rounds of the
objective's loss, at most ``--max-rounds``), with ``--threads`` threads, seed 0, and scored on
valid and test with the dataset's metric (ROC-AUC, R²). Not a race: no budget, no sample —
what each configuration can reach, and how long it takes to get there.

Output: ``gbdt_portfolio.csv`` (``dataset, config, cat_smooth, in_portfolio, rounds, valid,
test, fit_s``) in the results folder, and a table per dataset on stdout.

    python exps/gbdt_portfolio.py [--datasets frappe uci_diabetes ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import common
import peers_data
from common import log

COLUMNS = ["dataset", "config", "cat_smooth", "in_portfolio", "rounds", "valid", "test", "fit_s"]
PATIENCE = 50

ALTERNATIVES = [  # configurations tried beside the portfolio's (text form of GbdtConfig)
    "leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1",   # LightGBM's defaults, mild subsampling
    "leaves=63,lr=0.3,min_child=20,ff=0.9,bf=1,l2=1",     # fast and larger
    "leaves=4,lr=0.2,min_child=5,ff=1,bf=1,l2=0",         # stumps-like, fast
    "leaves=63,lr=0.05,min_child=20,ff=0.8,bf=0.8,l2=1,cat=50",
    "leaves=31,lr=0.03,min_child=100,ff=0.5,bf=0.7,l2=10,cat=50",
    "leaves=31,lr=0.3,min_child=20,ff=0.9,bf=1,l2=1,cat=50",
]


def read_splits(spec):
    """(feature map, {split: (X, y)}, task) of ``spec``'s dataset, as a trees candidate reads it."""
    from trails.context import resolve_context
    from trails.data.session import PgSession
    from trails.families.gbdt_features import feature_map_of, feature_matrix, lightgbm_labels
    from trails.refinement.data import load_split

    connection = common.connect(autocommit=False)
    try:
        session = PgSession(connection)
        context = resolve_context(session, spec.name, spec.label, task=spec.task)
        splits = {name: load_split(session, context.dataset, context.layout, name) for name in peers_data.SPLITS}
        connection.commit()
    finally:
        connection.close()
    train = splits["train"]
    feature_map = feature_map_of(train.values, context.layout.n_ids, train.ids)
    data = {name: (feature_matrix(split.ids, split.values, feature_map), lightgbm_labels(split.labels))
            for name, split in splits.items()}
    return feature_map, data, context.layout.task


def fit(config, feature_map, data, task, threads: int, max_rounds: int) -> dict:
    """Train ``config`` early-stopped on valid; its rounds, valid and test scores, seconds."""
    import lightgbm
    from trails.families.gbdt_training import OBJECTIVES

    objective, metric = OBJECTIVES[task.kind]
    params = {**config.lightgbm_params(), "objective": objective, "metric": metric, "seed": 0,
              "num_threads": threads, "verbosity": -1, "max_bin": 255, "feature_pre_filter": False}
    started = time.monotonic()
    train = lightgbm.Dataset(*data["train"], categorical_feature=feature_map.categorical_fields, params=params)
    valid = lightgbm.Dataset(*data["valid"], reference=train)
    booster = lightgbm.train(params, train, num_boost_round=max_rounds, valid_sets=[valid],
                             callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)])
    fit_s = time.monotonic() - started
    scores = {}
    for name in ("valid", "test"):
        matrix, labels = data[name]
        predicted = booster.predict(matrix, num_iteration=booster.best_iteration)
        scores[name] = score(task, labels, predicted)
    return {"rounds": booster.best_iteration, **scores, "fit_s": fit_s}


def score(task, labels, predicted) -> float:
    from sklearn import metrics

    if task.kind == "regression":
        return float(metrics.r2_score(labels, predicted))
    return float(metrics.roc_auc_score(labels, predicted))


def main() -> None:
    from trails.families.gbdt_config import PORTFOLIO, parse_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(peers_data.DATASETS), choices=list(peers_data.DATASETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-rounds", type=int, default=3000)
    args = p.parse_args()
    configs = [(config, True) for config in PORTFOLIO] + [(parse_config(text), False) for text in ALTERNATIVES]
    rows = []
    for name in args.datasets:
        feature_map, data, task = read_splits(peers_data.DATASETS[name])
        log(f"{name}: {len(data['train'][1])} train rows, {feature_map.n_fields} fields "
            f"({len(feature_map.categorical_fields)} categorical)")
        for config, in_portfolio in configs:
            result = fit(config, feature_map, data, task, args.threads, args.max_rounds)
            rows.append({"dataset": name, "config": config.text, "cat_smooth": config.cat_smooth,
                         "in_portfolio": in_portfolio, **result})
            log(f"  {'P' if in_portfolio else ' '} {config.text:60s} rounds {result['rounds']:5d} "
                f"valid {result['valid']:.4f} test {result['test']:.4f} {result['fit_s']:6.1f} s")
        common.write_csv(common.results_dir() / "gbdt_portfolio.csv", rows, COLUMNS)


if __name__ == "__main__":
    main()
