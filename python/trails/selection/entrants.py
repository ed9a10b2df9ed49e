"""Who enters the race: how many candidates of each model family, and what a unit of the trees'
resource is. Pure: no database, no clock.

The planner (:mod:`trails.selection.planning`) sizes successive halving in *slots*: K candidates
trained for the rungs' units, a unit costing about one epoch of the costliest MLP candidate (what
:func:`~trails.selection.phases.revise` timed, or the cost model's estimate). The families share
those slots:

* **A trees unit costs what an MLP epoch costs.** Its boosting rounds are the unit's seconds over
  the measured seconds of one round on the train split (:func:`rounds_per_unit`, clamped to
  ``[MIN_ROUNDS_PER_UNIT, MAX_ROUNDS_PER_UNIT]``), so a rung costs what the planner planned
  whichever family fills its slots.
* **Both families enter, by halves** (``families => 'auto'``): the MLPs get ⌊K/2⌋ slots (at least
  one), the trees the rest (at most their portfolio), and K is at least 2 when budgeted in seconds,
  so a bad first estimate of either family's cost cannot leave it out. From the second rung on,
  slots are won on the decision metric only: successive halving promotes across families, so the
  family that fits the table keeps the budget, and the winner's finishing phase trains it on to
  the deadline.
* Budgeted in trials (``max_trials``), K is exactly ``max_trials`` (one candidate: an MLP).

* **The trees that found no slot wait as reserves.** The portfolio's configurations beyond the
  trees' share train from scratch, in portfolio order, when the race's winner has finished
  before the deadline (a converged trees winner often has): a trees round is cheap where trees
  win, so the time left is worth more as another configuration than as more rounds of one that
  has stopped improving (:mod:`trails.refinement.halving`, "Time the winner leaves").

* **An MLP slot is an (arch, recipe) pair.** The best-scored arch races with each recipe of the
  portfolio (``[coordinator] mlp_recipes`` of :data:`trails.refinement.recipe.PORTFOLIO`, the
  run's own recipe first), the next archs with the recipes in turn (:func:`mlp_configs`): TFMEMs
  rank widths, the rungs decide recipes on valid rows. Budgeted in trials, every MLP candidate
  trains with the run's recipe (K archs, as TRAILS).

``families => 'mlp'`` races only MLPs (TRAILS' race, with recipes); ``'gbdt'`` fills every slot
with trees.
The candidates alternate between families, each family's best first, so that ties in valid
score (which keep the candidates' order) do not favour one family.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import zip_longest

from trails.coordinator import Plan
from trails.errors import TrailsError
from trails.families import DEFAULT_FAMILY, Candidate
from trails.families.mlp_config import mlp_config
from trails.refinement.recipe import PORTFOLIO, Recipe
from trails.refinement.settings import TrainingSettings
from trails.selection.planning import Revision, Rules

MIN_ROUNDS_PER_UNIT = 10
"""The fewest boosting rounds in a unit: a rung of fewer rounds says little about a configuration."""

MAX_ROUNDS_PER_UNIT = 1000
"""The most boosting rounds in a unit (a tiny table makes rounds nearly free)."""

TREES = "gbdt"
"""The trees family's name."""


@dataclass(frozen=True)
class Race:
    """What successive halving runs: the candidates of every family, best first and
    alternating; the plan for them (K, U, rungs); the most units a candidate trains in the
    rungs; the training settings (``rounds_per_unit`` sized here); and what sized it.

    Attributes:
        unit_s: seconds one unit costs (an epoch of the costliest MLP candidate), None when
            nothing measured it.
        round_s: measured seconds of one boosting round of the costliest trees candidate on the
            train split, None without trees.
        skipped: trees configurations left out for memory, with the bytes each would need.
        reserves: trees candidates that found no slot, trained when the winner leaves time
            (none in trials).
    """

    candidates: tuple
    plan: Plan
    rung_epochs: int
    settings: TrainingSettings
    unit_s: float | None = None
    round_s: float | None = None
    skipped: tuple = ()
    reserves: tuple = ()

    def count(self, family: str) -> int:
        """Candidates of ``family`` in the race."""
        return sum(candidate.family == family for candidate in self.candidates)


def rounds_per_unit(unit_s: float | None, round_s: float | None, default: int) -> int:
    """Boosting rounds that cost about ``unit_s`` seconds at ``round_s`` seconds a round,
    within ``[MIN_ROUNDS_PER_UNIT, MAX_ROUNDS_PER_UNIT]``; ``default`` when either is unknown."""
    if not unit_s or not round_s or unit_s <= 0 or round_s <= 0:
        return default
    return int(min(MAX_ROUNDS_PER_UNIT, max(MIN_ROUNDS_PER_UNIT, round(unit_s / round_s))))


def shares(k: int, families: tuple[str, ...], mlp_available: int, trees_available: int,
           in_trials: bool) -> tuple[int, int]:
    """(MLP candidates, trees candidates) of a race of ``k`` planned slots among ``families``
    (see the module docstring), given how many of each there are to choose from."""
    if TREES not in families:
        return min(k, mlp_available), 0
    if DEFAULT_FAMILY not in families:
        return 0, min(max(1, k), trees_available)
    total = k if in_trials else max(k, 2)
    mlp = max(1, min(total // 2, mlp_available))
    return mlp, max(0, min(total - mlp, trees_available))


def race_recipes(settings: TrainingSettings, count: int, in_trials: bool = False, bounded: bool = False) -> tuple:
    """The recipes an MLP arch races with: the first ``count`` (at least one) of
    :data:`~trails.refinement.recipe.PORTFOLIO` that change training on a run of ``settings``
    (bins need a numeric field: :meth:`Recipe.applies`); only the run's own in trials. A run
    ``bounded`` by ``max_params`` leaves out recipes that widen the embedding: its archs were
    chosen within the bound at the run's width, and a wider input adds first-layer weights."""
    if in_trials:
        return (Recipe(),)
    fitting = (recipe for recipe in PORTFOLIO if recipe.applies(settings)
               and not (bounded and (recipe.embedding_dim or 0) > settings.embedding_dim))
    return tuple(fitting)[:max(1, count)]


def mlp_configs(archs: list, n: int, recipes: tuple) -> list:
    """The configurations of ``n`` MLP slots: ``archs[0]`` (the best-scored) with each of
    ``recipes``, then ``archs[1:]`` with the recipes in turn, starting from the second; at most
    ``n`` (fewer when the archs run out)."""
    recipes = tuple(recipes) or (Recipe(),)
    configs = [mlp_config(archs[0], recipe) for recipe in recipes] if archs else []
    configs += [mlp_config(arch, recipes[(i + 1) % len(recipes)]) for i, arch in enumerate(archs[1:])]
    return configs[:max(0, n)]


def enter(revision: Revision, families: tuple[str, ...], rules: Rules, settings: TrainingSettings,
          portfolio: list, *, in_trials: bool, unit_s: float | None = None,
          round_s: float | None = None, max_nodes: int | None = None, predict_s: float = 0.0,
          prediction_rows: int = 0) -> Race:
    """The race for ``revision``'s plan: its MLP candidates (best-scored first) and the trees'
    ``portfolio`` (most useful first) shared as the module docstring says, the rest of the
    portfolio as reserves (unless ``in_trials``); the plan's rungs are those of the race's K (U
    unchanged), with a finishing phase unless ``in_trials``; the trees grow at most
    ``max_nodes`` nodes (``max_params``) and keep time for predicting ``prediction_rows`` rows
    at ``predict_s`` seconds a row and tree (:class:`TrainingSettings`)."""
    plan, archs = revision.plan, list(revision.candidates.archs)
    n_mlp, n_trees = shares(max(1, plan.k), families, len(archs), len(portfolio), in_trials)
    if n_mlp + n_trees == 0:
        raise TrailsError("no candidate of the families asked for can race: every trees configuration has more "
                          "nodes in one boosting round than max_params, or needs more memory than is free",
                          hint="raise max_params, or use families => 'auto' or 'mlp'")
    mlps = [Candidate(DEFAULT_FAMILY, config)
            for config in mlp_configs(archs, n_mlp, race_recipes(settings, rules.mlp_recipes, in_trials,
                                                                 bounded=max_nodes is not None))]
    trees = [Candidate(TREES, config) for config in portfolio[:n_trees]]
    reserves = () if in_trials or not trees else tuple(Candidate(TREES, config) for config in portfolio[n_trees:])
    candidates = tuple(c for pair in zip_longest(mlps, trees) for c in pair if c is not None)
    rung_epochs = revision.rung_epochs
    if len(candidates) != plan.k:
        plan = dataclasses.replace(plan, k=len(candidates),
                                   rungs=rules.rungs(len(candidates), max(1, plan.u), finish=not in_trials))
    if n_trees:
        settings = dataclasses.replace(settings, max_nodes=max_nodes,
                                       rounds_per_unit=rounds_per_unit(unit_s, round_s, settings.rounds_per_unit),
                                       predict_s=float(predict_s), prediction_rows=int(prediction_rows))
    return Race(candidates, plan, rung_epochs, settings, unit_s, round_s if n_trees else None, reserves=reserves)
