"""The winner's held-out figures, and the rows that record a call.

:func:`evaluate_winner` rebuilds the winner from its weights, scores it on the test split with
the task's metric and, for a binary label, reports ROC-AUC too (:func:`auc_of`, the one place
that rule is written; refit uses it as well). :func:`store_selection` writes the run and its
model atomically and returns the row ``model_selection`` returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from trails.coordinator import Plan
from trails.data.session import Session
from trails.filtering import FilteringResult
from trails.families import DEFAULT_FAMILY, ModelFamily, ModelHyper, get_family
from trails.families.mlp_config import trained_settings
from trails.refinement.data import SplitTensors, load_split
from trails.refinement.settings import RECIPE_SETTINGS
from trails.refinement.trainer import TrainingSettings
from trails.registry import store_run_and_model
from trails.selection.budget import Budget
from trails.selection.entrants import Race
from trails.selection.measure import Measurements
from trails.selection.planning import Revision
from trails.selection.prepare import Problem
from trails.selection.refiners import Refined
from trails.selection.request import SelectionRequest
from trails.task import Task

AUC = "roc_auc"


@dataclass(frozen=True)
class Outcome:
    """The winner's test score (the task's metric), its ROC-AUCs on valid and test (a binary
    label only; valid None when this process does not hold the valid split), its parameter
    count, the hyper-parameters that rebuild it (``trails.models.hyper``) and the test rows it
    was scored on (the deployed model is compared on them: :mod:`trails.selection.deployment`)."""

    test_score: float
    valid_auc: float | None
    test_auc: float | None
    params: int
    hyper: ModelHyper
    test_data: SplitTensors | None = None


def auc_of(family: ModelFamily, model, data: SplitTensors | None, task: Task, score: float,
           batch_size: int) -> float | None:
    """ROC-AUC of a binary ``model`` of ``family`` on ``data``: ``score`` itself when the
    task's metric is AUC (it was measured already), else evaluated; None for another task or
    without ``data``."""
    if task.kind != "binary":
        return None
    if task.metric == AUC:
        return score
    return None if data is None else family.evaluate(model, data, task.with_metric(AUC), batch_size)


def _hyper_extra(refined: Refined, trained: TrainingSettings) -> dict:
    """What the stored ``hyper`` holds beyond :class:`ModelHyper`'s fields: an MLP's ``recipe``
    (dropout, weight decay, embedding L2, numeric bins and plateau it trained with: the run's
    settings and its candidate's recipe, ``trained``; bins 0 where the run had no field to bin;
    what refit trains it with again) and, for a warm start's winner that started from a stored
    model, ``resumed_from``."""
    extra = {}
    if refined.winner.family == DEFAULT_FAMILY:
        extra["recipe"] = {name: getattr(trained, name) for name in RECIPE_SETTINGS}
        if not trained.numeric_edges:  # nothing was binned (numeric_encoding => 'linear', or no numeric field)
            extra["recipe"]["numeric_bins"] = 0
    if refined.winner.resumed_from is not None:
        extra["resumed_from"] = refined.winner.resumed_from
    return extra


def evaluate_winner(session: Session, problem: Problem, refined: Refined, settings: TrainingSettings,
                    seed: int) -> Outcome:
    """Read the test split and score the winner on it (see the module docstring)."""
    layout, task, family = problem.layout, problem.task, get_family(refined.winner.family)
    test_data = load_split(session, problem.context.dataset, layout, "test", ordered=False)
    trained = trained_settings(refined.winner, settings)
    hyper = ModelHyper(n_ids=layout.n_ids, n_fields=layout.n_fields, n_outputs=task.n_outputs,
                       embedding_dim=trained.embedding_dim, batch_norm=trained.batch_norm,
                       epochs=refined.summary.get("winner_epochs"), learning_rate=trained.learning_rate,
                       batch_size=trained.batch_size, iter_per_epoch=trained.iter_per_epoch, seed=seed,
                       family=family.name, extra=_hyper_extra(refined, trained))
    network = family.from_bytes(refined.winner.config, hyper, task.n_outputs, refined.weights)
    params = family.model_parameters(network)
    hyper = dataclasses.replace(hyper, mlp_params=params, rounds_per_unit=settings.rounds_per_unit)
    test_score = family.evaluate(network, test_data, task, settings.eval_batch_size)
    return Outcome(test_score,
                   auc_of(family, network, refined.valid, task, refined.valid_score, settings.eval_batch_size),
                   auc_of(family, network, test_data, task, test_score, settings.eval_batch_size), params, hyper,
                   test_data)


def plan_record(plan: Plan, revision: Revision, race: Race, budget: Budget, measured: Measurements,
                request: SelectionRequest) -> dict:
    """``trails.runs.phases.plan``: the plan successive halving ran, the first plan's N, K, U,
    the race's families and what they were based on."""
    first = revision.previous or plan
    families = {"families": request.families, "entrants": {name: race.count(name) for name in request.family_names},
                "unit_s": race.unit_s, "round_s": race.round_s, "rounds_per_unit": race.settings.rounds_per_unit,
                "reserves": len(race.reserves), "predict_s": race.settings.predict_s,
                "prediction_rows": race.settings.prediction_rows}
    return {"n": plan.n, "k": plan.k, "u": plan.u, "race": families, "planned_filtering_s": plan.filtering_s,
            "planned_refinement_s": plan.refinement_s, "available_s": budget.available_s,
            "epoch_cap_s": revision.candidates.epoch_cap_s, "cost_model": measured.cost.to_json(),
            "max_params": request.max_params, "max_trials": request.max_trials,
            "initial": {"n": first.n, "k": first.k, "u": first.u}}


def store_selection(session: Session, request: SelectionRequest, problem: Problem, budget: Budget,
                    measured: Measurements, scored: FilteringResult, revision: Revision, race: Race,
                    refined: Refined, outcome: Outcome, warm_start: dict | None = None) -> dict:
    """Insert the run and its model (atomically); returns the row ``model_selection`` returns.
    ``warm_start``: what a warm start reused (``trails.runs.warm_start``), None for a cold call."""
    plan, task, k = race.plan, problem.task, len(race.candidates)
    phases = dict(budget.clock.phases, plan=plan_record(plan, revision, race, budget, measured, request),
                  refinement=refined.summary, rows=problem.rows)
    if refined.service_failed is not None:
        phases["service_failed"] = refined.service_failed
    best_arch = refined.winner.stored_text  # a model of its configuration, however it started
    scores = {"task": task.kind, "metric": task.metric, "valid_score": refined.valid_score,
              "test_score": outcome.test_score, "valid_auc": outcome.valid_auc, "test_auc": outcome.test_auc,
              "family": refined.winner.family}
    family_scores = refined.summary.get("best_by_family") or {refined.winner.family: refined.valid_score}
    run = dict(scores, dataset=request.dataset, label=request.label, layout_id=problem.layout.layout_id,
               budget_s=request.budget_s, tfmem=request.tfmem, refinement=refined.mode, n_scored=scored.n_scored,
               k_refined=k, u=plan.u, t1=measured.t1, t2=measured.t2, phases=phases, best_arch=best_arch,
               elapsed_s=budget.clock.elapsed(), seed=request.seed, started_at=budget.clock.started_at.isoformat(),
               families=request.families, family_scores=family_scores, warm_start=warm_start)
    run_id, model_id = store_run_and_model(session, run, dict(
        scores, arch=best_arch, hyper=outcome.hyper, weights=refined.weights, params=outcome.params))
    return dict(scores, run_id=run_id, family_scores=family_scores, best_arch=best_arch, n_scored=scored.n_scored, k_refined=k, u=plan.u,
                elapsed_s=budget.clock.elapsed(), model_id=model_id, params=outcome.params)
