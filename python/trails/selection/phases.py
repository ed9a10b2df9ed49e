"""The phases of a call that need torch, imported together once the call's arguments,
dataset and label are checked (:func:`trails.selection.call._training_phases`), and the two
that join measurement and planning: :func:`revise` and :func:`plan_summary`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from trails.coordinator import Plan
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import TrainingSettings
from trails.families import Candidate
from trails.selection import entrants, planning
from trails.selection.budget import Budget
from trails.selection.measure import (Measurements, decision_rows, measure, time_boosting, time_candidates,
                                     time_tree_prediction)
from trails.selection.deployment import decide as decide_deployment
from trails.selection.outcome import evaluate_winner, store_selection
from trails.selection.prepare import Problem
from trails.selection.refiners import RefineTask, ServiceRefiner, choose_refiner
from trails.selection.scoring import params_filter, score_candidates, vectorised
from trails.space import arch_text

__all__ = ["RefineTask", "ServiceRefiner", "TrainingSettings", "choose_refiner", "decide_deployment", "evaluate_winner",
           "measure",
           "params_filter", "plan_summary", "race", "revise", "score_candidates", "store_selection", "vectorised"]

PORTFOLIO_SIZE = 10
"""Trees configurations the race may take, as entrants or reserves
(:func:`trails.families.gbdt.portfolio`), most useful first."""

TREES_MEMORY_SHARE = 0.5
"""Share of the machine's free memory one trees candidate may need (the binned train set aside)."""


def free_memory_bytes() -> int:
    """The machine's free physical memory (``sysconf``), bytes."""
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def prediction_rows(rows: dict, settings: TrainingSettings) -> int:
    """Rows a trees winner is predicted on after the race: the test split (it is not scored
    again on the whole valid split: ``ModelFamily.rescored``)."""
    return int(rows["test"])


def revise(problem: Problem, plan: Plan, candidates: planning.Candidates, sample: SplitTensors,
           settings: TrainingSettings, rules: planning.Rules, budget: Budget) -> planning.Revision:
    """:func:`planning.revise_plan`, with the costliest candidate timed on ``sample`` first
    when the revision needs it (budgeted in seconds, K > 1)."""
    if not planning.needs_timing(plan, budget.in_trials):
        return planning.revise_plan(rules, plan, candidates, in_trials=budget.in_trials)
    epoch_s, evaluation_s = time_candidates(problem, candidates.archs, sample, settings)
    return planning.revise_plan(rules, plan, candidates, in_trials=False, epoch_s=epoch_s,
                                evaluation_s=evaluation_s, seconds_left=budget.seconds_left())


def race(problem: Problem, families: tuple[str, ...], revision: planning.Revision, sample: SplitTensors,
         settings: TrainingSettings, rules: planning.Rules, measured: Measurements, budget: Budget,
         seed: int, max_params: int | None = None) -> entrants.Race:
    """:func:`entrants.enter` for ``revision``: a unit costs an epoch of the costliest MLP
    candidate (as timed by the revision, else the cost model's estimate), and when trees enter,
    a round of the costliest of them is timed on ``sample`` to size theirs (and, with a
    deadline, its prediction, so that boosting keeps time for the winner's). Trees
    configurations whose boosting round could have more than ``max_params`` nodes are left out,
    and the others stop growing before they could pass it; those whose booster would need more
    than :data:`TREES_MEMORY_SHARE` of the free memory are left out too (``Race.skipped``)."""
    from trails.families import get_family
    from trails.families.gbdt import portfolio
    from trails.families.gbdt_config import costliest, fitting

    configs = portfolio(PORTFOLIO_SIZE) if entrants.TREES in families else []
    n_outputs = problem.task.n_outputs
    if max_params is not None:
        trees = get_family(entrants.TREES)
        configs = [c for c in configs if trees.parameter_count(c, None, n_outputs) <= max_params]
    configs, skipped = fitting(configs, int(problem.rows["train"]), problem.context.layout.n_fields, n_outputs,
                               int(TREES_MEMORY_SHARE * free_memory_bytes()))
    archs = revision.candidates.archs
    n_mlp, n_trees = entrants.shares(max(1, revision.plan.k), families, len(archs), len(configs), budget.in_trials)
    unit_s = revision.epoch_s
    if unit_s is None and archs:
        widest = planning.costliest(archs[:max(1, n_mlp)], problem.context.scoring.in_features)
        unit_s = float(measured.cost.epoch_seconds(np.array([widest]))[0])
    round_s, predict_s = None, 0.0
    if n_trees:
        costly = Candidate(entrants.TREES, costliest(configs[:n_trees]))
        round_s = time_boosting(problem, costly, sample, settings, seed)
        if not budget.in_trials:  # a deadline to keep the winner's predictions from
            predict_s = time_tree_prediction(problem, costly, sample, settings, seed)
    race = entrants.enter(revision, families, rules, settings, configs, in_trials=budget.in_trials, unit_s=unit_s,
                          round_s=round_s, max_nodes=max_params, predict_s=predict_s,
                          prediction_rows=0 if budget.in_trials else prediction_rows(problem.rows, settings))
    return dataclasses.replace(race, skipped=tuple(skipped))


def plan_summary(problem: Problem, budget: Budget, measured: Measurements, first: Plan,
                 scope: planning.FilteringScope, revision: planning.Revision, settings: TrainingSettings,
                 profile_s: float) -> dict:
    """``model_selection_plan``'s answer (see :func:`trails.selection.call.plan_model_selection`)."""
    space, plan = problem.context.space, revision.plan
    extremes = np.array([(min(space.widths),) * space.layers, (max(space.widths),) * space.layers])
    narrowest_s, widest_s = (float(x) for x in measured.cost.epoch_seconds(extremes))
    filtering_s = budget.clock.phases["filtering_s"]
    # the finishing phase trains to the deadline: it gets what the halving leaves of the time
    # left now (the revision's timing, counted in neither phase, is already spent)
    finish_s = max(0.0, budget.seconds_left() - plan.refinement_s)
    cost_json = dict(measured.cost.to_json(), epoch_s={arch_text(extremes[0]): narrowest_s,
                                                       arch_text(extremes[1]): widest_s},
                     decision_valid_rows=decision_rows(problem.rows, settings))
    return {"t1": measured.t1, "t2": measured.t2, "n": scope.n, "k": plan.k, "u": plan.u,
            "rungs": [r._asdict() for r in plan.rungs], "profile_s": profile_s, "load_s": budget.pending_load_s,
            "filtering_s": filtering_s, "refinement_s": plan.refinement_s, "finish_s": finish_s,
            "epoch_cap_s": revision.candidates.epoch_cap_s, "cost_model": cost_json,
            "test_and_store_s": budget.reserve_s, "initial": {"n": first.n, "k": first.k, "u": first.u},
            "total_s": profile_s + budget.pending_load_s + filtering_s + plan.refinement_s + finish_s
            + budget.reserve_s}
