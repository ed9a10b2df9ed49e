"""The MLP's recipe (issue #22): how the recipe portfolio was chosen, and the selected recipe
against TRAILS' fixed one in the same race.

Out of the database, on tables read once (``common.load_splits``, the service's read path),
through the product's training code (``Trial``, ``successive_halving`` with a finishing phase
and a deadline, as ``model_selection`` runs it). Regression tables are scored with R².

``--part recipes`` — **one arch, each recipe** of :data:`RECIPES` for ``--recipe-seconds``: the
learning rate annealed over the iterations that fit (as a winner's finishing phase; a ``plateau``
recipe holds it and steps it down instead), every epoch evaluated on the whole valid split; the best valid score, its epoch, and the test score of those
weights. One seed: this is the measurement the portfolio (``trails.refinement.recipe``) was
chosen from, not a result.

``--part race`` (the default) — **the same archs, the same budget, interleaved**: successive
halving over :data:`ARCHS` (K = 6, U = 1, η = 3) with

* ``before``: trails before issue #22 — TRAILS' recipe (every candidate an arch with the run's
  settings), the winner's last weights (``keep_best = false``), trained with the process's two
  torch threads under passive OpenMP waits (``train_threads = 0``);
* ``fixed``: the same with one training thread (``train_threads = 1``, the default from 0.6.0);
* ``selected``: the same six slots as (arch, recipe) pairs of the portfolio
  (:func:`trails.selection.entrants.mlp_configs`) and the best-validated weights of the
  finishing phase (``keep_best = true``): what ``model_selection`` races from 0.6.0.

Per dataset and seed both variants run in alternating order; each winner is scored on the test
split. Choices use valid rows only.

    python exps/recipe.py [--part race|recipes] [--datasets frappe uci_diabetes ...] [--budget 30]
        [--seeds 3] [--threads 2] [--variants fixed selected] [--recipes run's ple16 ...] [--tag numeric]
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import common
import peers_data
from common import log

from trails.families import Candidate
from trails.refinement.finishing import Plateau
from trails.refinement.halving import successive_halving
from trails.refinement.recipe import PIECEWISE, REGULARISED, Recipe, task_schedule
from trails.refinement.trainer import Trial, TrainingSettings, evaluate, iterations_per_epoch, train
from trails.selection.entrants import mlp_configs, race_recipes
from trails.selection.planning import Rules
from trails.space import parse_arch

ARCHS = ["512-128-48-512", "256-224-96-512", "512-192-112-512", "128-128-128", "256-256", "64-64"]
"""The candidates of every race: widths the filtering phase put first on these tables in
earlier runs (``trails.models``), and three plain ones."""

RECIPE_ARCH = "256-256"
"""The arch of ``--part recipes``."""

RECIPES = {"run's": Recipe(), "drop0.3": Recipe(dropout=0.3), "drop0.5": Recipe(dropout=0.5),
           "wd0.1": Recipe(weight_decay=0.1), "eml2_1e-3": Recipe(embedding_l2=1e-3),
           "regularised": REGULARISED, "ple8": Recipe(numeric_bins=8), "ple16": PIECEWISE,
           "ple32": Recipe(numeric_bins=32), "regularised+ple16": Recipe(0.3, 0.1, 1e-3, 16),
           "bs128": Recipe(batch_size=128), "bs2048": Recipe(batch_size=2048), "emb6": Recipe(embedding_dim=6),
           "emb16": Recipe(embedding_dim=16), "plateau1": Recipe(plateau=1), "plateau2": Recipe(plateau=2),
           "emb16+plateau1": Recipe(embedding_dim=16, plateau=1), "bs128+plateau1": Recipe(batch_size=128, plateau=1),
           "regularised+plateau1": dataclasses.replace(REGULARISED, plateau=1)}
VARIANTS = ("before", "fixed", "selected")
RACE_COLUMNS = ["dataset", "seed", "variant", "winner", "winner_epochs", "finish_epochs", "valid_score",
                "test_score", "metric", "elapsed_s", "budget_s", "machine", "stamp"]
RECIPE_COLUMNS = ["dataset", "recipe", "arch", "epochs", "best_valid", "best_epoch", "last_valid",
                  "test_at_best", "metric", "seconds", "machine", "stamp"]


def load(name: str):
    """``name``'s splits and the task it is scored with (R² for a regression label)."""
    spec = peers_data.DATASETS.get(name, peers_data.DatasetSpec(name, "label", "binary"))
    splits = common.load_splits(name, spec.label, spec.task)
    task = splits.layout.task
    return splits, task.with_metric("r2") if task.kind == "regression" else task


def run_settings(splits) -> TrainingSettings:
    """The configuration's settings with the table's numeric fields' quantiles and the finishing
    schedule of its task, as a run's."""
    return task_schedule(TrainingSettings.from_config(numeric_edges=splits.layout.numeric_edges()), splits.layout.task)


def race(splits, task, variant: str, seed: int, budget_s: float) -> dict:
    """One successive halving of ``variant`` within ``budget_s``; the winner's scores."""
    base = run_settings(splits)
    archs = [parse_arch(arch) for arch in ARCHS]
    if variant in ("before", "fixed"):
        candidates = archs
        settings = dataclasses.replace(base, keep_best=False, train_threads=0 if variant == "before" else 1,
                                       plateau=0)
    else:
        recipes = race_recipes(base, Rules.from_config().mlp_recipes)
        candidates = [Candidate("mlp", c) for c in mlp_configs(archs, len(archs), recipes)]
        settings = dataclasses.replace(base, keep_best=True)
    started = time.monotonic()
    result = successive_halving(candidates, splits.train, splits.valid, splits.n_ids, splits.n_fields, u=1, eta=3,
                                max_epochs=9, settings=settings, seed=seed, device="cpu",
                                deadline=started + budget_s, finish=True, task=task)
    elapsed = time.monotonic() - started
    return {"winner": result.winner.text, "winner_epochs": result.winner_epochs,
            "finish_epochs": result.finish_epochs, "valid_score": result.valid_score,
            "test_score": evaluate(result.model(), splits.test, task, settings.eval_batch_size),
            "metric": task.metric, "elapsed_s": elapsed}


def one_recipe(splits, task, recipe: Recipe, seconds: float) -> dict:
    """:data:`RECIPE_ARCH` trained with ``recipe`` for ``seconds``, annealed, each epoch evaluated."""
    settings = recipe.apply(run_settings(splits))
    trial = Trial(parse_arch(RECIPE_ARCH), splits.n_ids, splits.n_fields, 10**12, settings, seed=0, task=task)
    started = time.monotonic()
    train(trial, splits.train, 1, settings.batch_size, settings.iter_per_epoch)  # times an iteration
    iterations = int((seconds - (time.monotonic() - started)) / trial.seconds_per_iteration)
    if not settings.plateau:
        trial.anneal(iterations)
    per_epoch = iterations_per_epoch(len(splits.train), settings.batch_size, settings.iter_per_epoch)
    plateau = Plateau.over(settings.plateau or 0, trial.iterations, iterations, per_epoch)
    scores = [evaluate(trial.model, splits.valid, task)]
    best_score, best_epoch, best = scores[0], 1, trial.snapshot()
    while time.monotonic() < started + seconds:
        train(trial, splits.train, 1, settings.batch_size, settings.iter_per_epoch, deadline=started + seconds)
        scores.append(evaluate(trial.model, splits.valid, task))
        improved = task.better(scores[-1], best_score)
        if improved:
            best_score, best_epoch, best = scores[-1], max(1, trial.epochs_trained), trial.snapshot()
        plateau.after_epoch(trial, improved, best)
    trial.model.load_state_dict(best)
    return {"arch": RECIPE_ARCH, "epochs": trial.epochs_trained, "best_valid": best_score,
            "best_epoch": best_epoch, "last_valid": scores[-1],
            "test_at_best": evaluate(trial.model, splits.test, task), "metric": task.metric, "seconds": seconds}


def run_races(args, machine: str, stamp: str) -> None:
    seeds, budget = args.seeds or (1 if args.quick else 3), 5.0 if args.quick else args.budget
    rows = []
    for name in args.datasets:
        splits, task = load(name)
        for seed in range(seeds):
            variants = [v for v in VARIANTS if v in args.variants]
            for variant in variants[seed % len(variants):] + variants[:seed % len(variants)]:  # rotated
                row = {"dataset": name, "seed": seed, "variant": variant, "budget_s": budget, "machine": machine,
                       "stamp": stamp, **race(splits, task, variant, seed, budget)}
                log(f"{name} seed {seed} {variant}: {row['winner']} valid {row['valid_score']:.4f} test "
                    f"{row['test_score']:.4f} ({row['winner_epochs']} epochs, {row['elapsed_s']:.1f} s)")
                rows.append(row)
    common.write_csv(common.result_path("recipe", "csv", args.quick, args.tag), rows, RACE_COLUMNS)
    variants = [v for v in VARIANTS if v in args.variants]
    base = variants[0]
    lines = [f"{' / '.join(variants)} (before: 2 passive threads, last weights; fixed: 1 thread; selected: recipe "
             f"pairs, best weights), same archs, {budget:g} s, {seeds} seeds; {machine}"]
    for name in args.datasets:
        by = {v: [r for r in rows if r["dataset"] == name and r["variant"] == v] for v in variants}
        med = "  ".join(f"{v} {statistics.median(r['test_score'] for r in by[v]):.4f}" for v in variants)
        per_seed = ", ".join(f"{s['test_score'] - b['test_score']:+.4f}" for b, s in zip(by[base], by[variants[-1]]))
        lines.append(f"{name} ({by[base][0]['metric']}): {med}; {variants[-1]}-{base} per seed {per_seed}; "
                     f"{variants[-1]} winners: " + "; ".join(r["winner"] for r in by[variants[-1]]))
    _report("recipe", lines, args.quick, args.tag)


def run_recipes(args, machine: str, stamp: str) -> None:
    seconds = 5.0 if args.quick else args.recipe_seconds
    rows = []
    for name in args.datasets:
        splits, task = load(name)
        for label in args.recipes or list(RECIPES):
            recipe = RECIPES[label]
            if not recipe.applies(run_settings(splits)):
                continue
            row = {"dataset": name, "recipe": label, "machine": machine, "stamp": stamp,
                   **one_recipe(splits, task, recipe, seconds)}
            log(f"{name} {label}: best valid {row['best_valid']:.4f} at epoch {row['best_epoch']}/{row['epochs']}, "
                f"last {row['last_valid']:.4f}, test at best {row['test_at_best']:.4f}")
            rows.append(row)
    common.write_csv(common.result_path("recipe_portfolio", "csv", args.quick, args.tag), rows, RECIPE_COLUMNS)
    lines = [f"recipes on {RECIPE_ARCH}, {seconds:g} s each, seed 0; {machine}"] + [
        f"{r['dataset']:12s} {r['recipe']:12s} best valid {r['best_valid']:.4f} @{r['best_epoch']}/{r['epochs']}"
        f"  last {r['last_valid']:.4f}  test@best {r['test_at_best']:.4f}" for r in rows]
    _report("recipe_portfolio", lines, args.quick, args.tag)


def _report(name: str, lines: list[str], quick: bool, tag: str | None) -> None:
    text = "\n".join(lines)
    common.result_path(name, "txt", quick, tag).write_text(text + "\n")
    print(text)


def main() -> None:
    p = common.parser(__doc__)
    p.add_argument("--part", choices=("race", "recipes"), default="race")
    p.add_argument("--datasets", nargs="+", default=["frappe", "uci_diabetes", "movielens", "fertility", "diamonds"])
    p.add_argument("--budget", type=float, default=30.0, help="seconds of one race")
    p.add_argument("--tag", default=None, help="results as recipe[_portfolio]_<tag>.{csv,txt}")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="variants of --part race")
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=None,
                   help="recipes of --part recipes (default: all; a binned one only on a table with numeric fields)")
    p.add_argument("--recipe-seconds", type=float, default=30.0, help="seconds of one recipe (--part recipes)")
    args = p.parse_args()
    common.setup(args)
    (run_races if args.part == "race" else run_recipes)(args, common.machine(), common.stamp())


if __name__ == "__main__":
    main()
