"""Re-selection when the table grows: the deployed old model vs a cold and a warm
``model_selection`` on the grown table, scored on the same test rows.

For each dataset (frappe: rows ordered by ``id``; movielens: by ``timestamp``), each split is
cut at its own 80th percentile of that key: the oldest 80 % of the rows are *old*, the rest
*new*. For each seed:

1. ``ws_<dataset>_s<seed>_{train,valid,test}`` get the old rows (a fresh copy; an ``id`` row
   number is added where the table has none, so that ``trails.predict_table`` can join back),
   and an earlier run's models, runs and deployments of that name are deleted;
2. ``model_selection(..., budget, seed)`` on them: the *old* model, deployed;
3. the new rows are appended to the three tables;
4. a *cold* (``warm_start => false``) and a *warm* (``warm_start => true``) ``model_selection``
   at the same budget and seed, neither deployed (so the warm one continues the old model),
   in alternating order across seeds;
5. the old, cold and warm models are scored on the grown test table — every row of it — with
   ``trails.predict_table`` and the dataset's metric (ROC AUC of the binary label).

Writes ``warm_start.csv`` (one row per dataset, seed and variant), ``warm_start.png`` and the
medians as text (``warm_start.txt``); ``--quick``: 1 seed, 10 s.

    python exps/warm_start.py [--datasets frappe movielens] [--budget 30] [--seeds 3] [--threads 2]
                              [--first-seed 0] [--append]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import common
from peers_data import DATASETS, quote

KEYS = {"frappe": "id", "movielens": "timestamp"}
OLD_SHARE = 0.8
VARIANTS = ("old", "cold", "warm")
SPLITS = ("train", "valid", "test")


def _run(cursor, statement: str, *args):
    cursor.execute(statement, args)
    return cursor.fetchall() if cursor.description else None


def make_old_tables(cursor, dataset: str, name: str) -> dict:
    """``<name>_<split>`` with the oldest rows of ``<dataset>_<split>``; returns the cut of each
    split's key and the new rows' count."""
    key, cuts = KEYS[dataset], {}
    for split in SPLITS:
        source, target = f"{dataset}_{split}", f"{name}_{split}"
        _run(cursor, f"DROP TABLE IF EXISTS {quote(target)}")
        has_id = _run(cursor, "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass"
                              " AND attname = 'id' AND NOT attisdropped", quote(source))[0][0] == 1
        numbered = "t.*" if has_id else "row_number() OVER (ORDER BY t.ctid) AS id, t.*"
        _run(cursor, f"CREATE TABLE {quote(target + '_all')} AS SELECT {numbered} FROM {quote(source)} t")
        cut = _run(cursor, f"SELECT percentile_disc(%s) WITHIN GROUP (ORDER BY {quote(key)})"
                           f" FROM {quote(target + '_all')}", OLD_SHARE)[0][0]
        _run(cursor, f"CREATE TABLE {quote(target)} AS SELECT * FROM {quote(target + '_all')}"
                     f" WHERE {quote(key)} <= %s", cut)
        cuts[split] = cut
    return cuts


def append_new_rows(cursor, name: str, key: str, cuts: dict) -> dict:
    """Append each split's new rows (``key`` above the split's cut); returns the rows each
    split has now."""
    rows = {}
    for split in SPLITS:
        target = f"{name}_{split}"
        _run(cursor, f"INSERT INTO {quote(target)} SELECT * FROM {quote(target + '_all')} WHERE {quote(key)} > %s",
             cuts[split])
        _run(cursor, f"DROP TABLE {quote(target + '_all')}")
        _run(cursor, f"ANALYZE {quote(target)}")
        rows[split] = _run(cursor, f"SELECT count(*) FROM {quote(target)}")[0][0]
    return rows


def forget_models(cursor, name: str) -> None:
    """Delete the deployments, runs and models of dataset ``name`` (this benchmark's own)."""
    _run(cursor, "DELETE FROM trails.deployments WHERE dataset = %s", name)
    _run(cursor, "DELETE FROM trails.models WHERE dataset = %s", name)
    _run(cursor, "DELETE FROM trails.runs WHERE dataset = %s", name)


def select(cursor, name: str, label: str, budget: float, seed: int, warm: bool, deploy: str) -> dict:
    started = time.monotonic()
    row = _run(cursor, "SELECT model_id, run_id, best_arch, family, test_score, elapsed_s FROM model_selection("
                       "%s, %s, label => %s, seed => %s, refinement => 'backend', deploy => %s, warm_start => %s)",
               name, budget, label, seed, deploy, warm)[0]
    warm_json, raced = _run(cursor, "SELECT warm_start, phases->'refinement'->>'winner' FROM trails.runs"
                                    " WHERE run_id = %s", row[1])[0]
    return {"model_id": row[0], "run_id": row[1], "winner": row[2], "raced_winner": raced, "family": row[3],
            "run_test_score": row[4], "elapsed_s": row[5], "wall_s": time.monotonic() - started,
            "warm_start": json.dumps(warm_json)}


def test_auc(cursor, model_id: int, name: str, label: str) -> float:
    """ROC AUC of ``model_id`` on every row of ``<name>_test`` (through trails.predict_table)."""
    from sklearn.metrics import roc_auc_score

    rows = _run(cursor, f"SELECT t.{quote(label)}::int, p.score FROM trails.predict_table(%s, %s) p"
                        f" JOIN {quote(name + '_test')} t USING (id)", model_id, name + "_test")
    return float(roc_auc_score([r[0] for r in rows], [r[1] for r in rows]))


def run_seed(cursor, dataset: str, seed: int, budget: float) -> list[dict]:
    spec, name = DATASETS[dataset], f"ws_{dataset}_s{seed}"
    forget_models(cursor, name)  # an earlier run's models of this name would be continued
    common.log(f"{dataset} seed {seed}: old tables ({KEYS[dataset]} ≤ each split's 80th percentile)")
    cuts = make_old_tables(cursor, dataset, name)
    old_rows = {split: _run(cursor, f"SELECT count(*) FROM {quote(name + '_' + split)}")[0][0] for split in SPLITS}
    results = {"old": select(cursor, name, spec.label, budget, seed, True, "if_better")}
    rows = append_new_rows(cursor, name, KEYS[dataset], cuts)
    order = ("cold", "warm") if seed % 2 == 0 else ("warm", "cold")
    for variant in order:
        results[variant] = select(cursor, name, spec.label, budget, seed, variant == "warm", "never")
    out = []
    for variant in VARIANTS:
        result = results[variant]
        score = test_auc(cursor, result["model_id"], name, spec.label)
        common.log(f"  {variant:4s}: test AUC {score:.4f} ({result['winner']}, {result['elapsed_s']:.1f} s)")
        out.append(dict(result, dataset=dataset, seed=seed, variant=variant, metric=spec.metric, test_score=score,
                        budget_s=budget, old_train_rows=old_rows["train"], train_rows=rows["train"],
                        test_rows=rows["test"], order="/".join(order)))
    for split in SPLITS:
        _run(cursor, f"DROP TABLE {quote(name + '_' + split)}")
    return out


def summary(rows: list[dict], header: str) -> str:
    lines = [header, "", "| dataset | old model | cold 30 s | warm 30 s | warm − cold | warm − old |",
             "|---|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {v: [r["test_score"] for r in rows if r["dataset"] == dataset and r["variant"] == v] for v in VARIANTS}
        seeds = [r["seed"] for r in rows if r["dataset"] == dataset and r["variant"] == "old"]
        gap = lambda a, b: statistics.median(x - y for x, y in zip(by[a], by[b]))  # noqa: E731
        lines.append(f"| {dataset} ({len(seeds)} seeds) | " + " | ".join(
            f"{statistics.median(by[v]):.4f}" for v in VARIANTS) + f" | {gap('warm', 'cold'):+.4f} | "
            f"{gap('warm', 'old'):+.4f} |")
    lines += ["", "per seed:"] + [f"  {r['dataset']} seed {r['seed']} {r['variant']:4s} {r['test_score']:.4f} "
                                   f"{r['raced_winner']} {r['elapsed_s']:.1f} s warm_start={r['warm_start']}" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    plt = common.pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for i, variant in enumerate(VARIANTS):
            scores = [r["test_score"] for r in rows if r["dataset"] == dataset and r["variant"] == variant]
            axis.bar(i, statistics.median(scores), color=("0.6", "tab:blue", "tab:orange")[i], alpha=0.6)
            axis.scatter([i] * len(scores), scores, color="k", s=12, zorder=3)
        scores = [r["test_score"] for r in rows if r["dataset"] == dataset]
        axis.set_ylim(min(scores) - 0.005, max(scores) + 0.003)
        axis.set_xticks(range(len(VARIANTS)), ["old model", "cold", "warm"])
        axis.set_title(f"{dataset}: test AUC after +20 % rows")
    common.save_figure(figure, path)


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.set_defaults(threads=2)
    p.add_argument("--datasets", nargs="+", default=list(KEYS), choices=list(KEYS))
    p.add_argument("--budget", type=float, default=30.0)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    p.add_argument("--append", action="store_true",
                   help="add these rows to the existing results (more seeds) and summarise them all")
    args = p.parse_args()
    common.setup(args)
    seeds = args.seeds or (1 if args.quick else 3)
    budget = 10.0 if args.quick else args.budget
    header = (f"warm start: {', '.join(args.datasets)}; {seeds} seeds; {budget:g} s; refinement backend, "
              f"{args.threads} threads; {common.stamp()}")
    common.log(header)
    connection = common.connect()
    common.backend_threads(connection, args.threads)
    rows = []
    with connection.cursor() as cursor:
        for dataset in args.datasets:
            for seed in range(args.first_seed, args.first_seed + seeds):
                rows += run_seed(cursor, dataset, seed, budget)
    columns = ["dataset", "seed", "variant", "metric", "test_score", "run_test_score", "winner", "raced_winner", "family",
               "elapsed_s", "wall_s", "budget_s", "old_train_rows", "train_rows", "test_rows", "order", "model_id",
               "warm_start"]
    path = common.result_path("warm_start", "csv", args.quick)
    if args.append and path.exists():
        rows = common.read_csv(path) + rows
        header += f" (appended seeds {args.first_seed}..{args.first_seed + seeds - 1})"
    common.write_csv(path, rows, columns)
    text = summary(rows, header)
    common.result_path("warm_start", "txt", args.quick).write_text(text)
    print(text)
    plot(rows, common.result_path("warm_start", "png", args.quick))


if __name__ == "__main__":
    main()
