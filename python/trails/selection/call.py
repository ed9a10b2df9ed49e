"""``model_selection`` and ``model_selection_plan``: the phases of one call, in order.

    request → budget → prepare (dataset, layout, label: no torch yet; a warm start keeps the
    previous model's ids) → preload → measure → plan → filter (a warm start reuses cached
    scores) → choose candidates → revise the plan → enter the families (the race; a warm start
    resumes the previous model's candidate) → refine → evaluate → store → deploy → row

Each phase is a function of named inputs returning one object (:mod:`trails.selection`'s
modules); where training runs is the :class:`~trails.selection.refiners.Refiner`'s business
and whether the budget is in seconds or in trials the :class:`~trails.selection.budget.Budget`'s
and :mod:`~trails.selection.planning`'s. Every phase's seconds go to ``trails.runs.phases``.
The budget is kept by construction: the plan spends only what is left after what was spent
and what must still happen (evaluating on test, storing), and the refinement gets a hard
deadline.
"""

from __future__ import annotations

import importlib

from trails import deployments
from trails.data.session import Session
from trails.errors import TrailsError
from trails.refinement.recipe import numeric_settings, task_schedule
from trails.refinement.settings import TrainingSettings
from trails.selection import planning, score_cache, warm
from trails.selection.budget import Budget
from trails.selection.prepare import prepare
from trails.selection.report import Reporter
from trails.selection.request import Hooks, SelectionRequest


def _training_phases():
    """The phases that need torch (measure, filtering, refinement, outcome): imported once a
    call's arguments, dataset and label are checked, so a mistake is refused at once in a
    fresh backend, where importing torch takes seconds."""
    return importlib.import_module("trails.selection.phases")


def run_settings(request: SelectionRequest, problem) -> TrainingSettings:
    """The configuration's training settings for this call, its ``numeric_encoding`` applied to
    the layout's numeric fields (:func:`~trails.refinement.recipe.numeric_settings`) and the
    finishing schedule resolved for its task (:func:`~trails.refinement.recipe.task_schedule`)."""
    settings = numeric_settings(TrainingSettings.from_config(), problem.layout.numeric_edges(), request.numeric_encoding)
    return task_schedule(settings, problem.task)


def select(session: Session, request: SelectionRequest, hooks: Hooks = Hooks(),
           started: float | None = None) -> dict:
    """The whole call; returns the row ``model_selection`` returns. ``started`` (a
    ``time.monotonic()`` value, default now) is when the budget started: the SQL function
    passes the moment it was called, so that imports count against the budget.

    Raises:
        TrailsError: for a bad argument, dataset or label, a budget too small, or a failed
            refinement; the database is left as it was.
    """
    request.validate()
    budget, report = Budget.start(request.budget_s, started), Reporter(hooks.notice)
    record = warm.WarmRecord() if request.warm_start else None
    with budget.phase("prepare_s"):
        problem, previous = warm.prepare_warm(session, request, report, record) if record else (
            prepare(session, request, report), None)
        phases = _training_phases()
        settings, rules = run_settings(request, problem), planning.Rules.from_config()
        report.numeric_encoding(request.numeric_encoding, settings)
        allowed = phases.params_filter(request.max_params, problem, settings.batch_norm, settings.embedding_dim)
        refiner = phases.choose_refiner(request.refinement, report)
    with budget.phase("load_s"):
        sample = refiner.preload(session, problem)
    hooks.interrupt()
    with budget.phase("profile_s"):
        measured = phases.measure(problem, request.tfmem, sample, settings, request.seed, allowed)
    comparing = request.deploy == "if_better" and deployments.current(session, request.dataset) is not None
    budget.settle(*refiner.read_costs(problem, budget.clock.phases["load_s"]), comparisons=int(comparing))
    plan = planning.initial_plan(rules, measured.t1, measured.t2, budget_s=request.budget_s,
                                 spent_s=budget.spent_at_settle_s, reserve_s=budget.reserve_s,
                                 max_trials=request.max_trials)
    report.plan(plan, measured.t1, measured.t2, budget.available_s)
    hooks.interrupt()
    with budget.phase("filtering_s"):
        scope = planning.filtering_scope(plan, budget.available_s, phases.vectorised(request.tfmem),
                                         problem.context.space.size)
        cache = record and score_cache.signature(request.tfmem, request.seed, problem.context.space,
                                                 problem.context.scoring)
        known = score_cache.load(session, cache) if record else None
        scored = phases.score_candidates(problem, scope, budget.seconds_from_now(scope.seconds), request.tfmem,
                                         request.seed, allowed, request.max_params, hooks.interrupt, report,
                                         known=known)
        if record:  # a cold call (warm_start => false) neither reads nor writes the cache
            if scored.new_scores:
                score_cache.save(session, cache, request.tfmem, request.seed, {**known, **scored.new_scores})
            record.scores_reused, record.scores_new = scored.reused, len(scored.new_scores)
            report.warm_scores(record.scores_reused, record.scores_new)
        candidates = planning.choose_candidates(scored.ranked, measured.cost, plan, budget.available_s,
                                                request.max_trials)
        report.candidates(candidates.archs, candidates.epoch_cap_s,
                          None if budget.in_trials else planning.finish_seconds(budget.available_s),
                          planning.MIN_FINAL_EPOCHS)
    hooks.interrupt()
    with budget.phase("replan_s"):
        revision = phases.revise(problem, plan, candidates, sample, settings, rules, budget)
        report.revision(revision, budget.in_trials, request.max_trials, request.max_params)
        race = phases.race(problem, request.family_names, revision, sample, settings, rules, measured, budget,
                           request.seed, request.max_params)
        start = None
        if previous is not None:
            race, start = warm.resume(previous, problem.layout, race, race.settings, request.max_params, record)
        report.race(race)
        if start is not None:
            report.warm_resumed(start, len(race.candidates) - 1)
        for reason in record.cold if record else ():
            report.cold(reason)
    with budget.phase("refinement_s"):
        refined = refiner.refine(session, problem, phases.RefineTask(
            list(race.candidates), race.plan, race.rung_epochs, budget.deadline, request.seed, race.settings, rules,
            race.reserves, () if start is None else (start,)),
            hooks, report)
    with budget.phase("test_s"):
        outcome = phases.evaluate_winner(session, problem, refined, race.settings, request.seed)
    report.winner(refined, outcome.params, problem.task.metric, outcome.test_score)
    row = phases.store_selection(session, request, problem, budget, measured, scored, revision, race, refined,
                                 outcome, record.to_json() if record else None)
    decision = phases.decide_deployment(session, request.deploy, problem, request.dataset, row["model_id"],
                                        outcome.test_score, outcome.test_data)
    report.deployment(row["model_id"], request.dataset, decision)
    return dict(row, deployed=decision.deployed)


def explain(session: Session, request: SelectionRequest) -> dict:
    """What ``model_selection`` would do now, without refining: the same phases up to the
    revised plan (the data read counted as the service would read it). Returns t1, t2, N, K,
    U, the rungs, the planned seconds per phase, the finishing phase's seconds, the cost cap
    on candidates (seconds per epoch), the cost model (as JSON, with the epoch seconds of the
    space's narrowest and widest archs) and the first plan's N, K, U.

    Raises:
        TrailsError: as :func:`run_model_selection` does before it refines.
    """
    if request.budget_s is None:
        raise TrailsError("budget_s must not be NULL", hint="e.g. model_selection_plan('frappe', 60)")
    request.validate()
    budget, report = Budget.start(request.budget_s), Reporter(lambda message: None)
    problem = prepare(session, request, report)
    phases = _training_phases()
    settings, rules = run_settings(request, problem), planning.Rules.from_config()
    refiner = phases.ServiceRefiner(client=None)
    sample = refiner.preload(session, problem)
    measured = phases.measure(problem, request.tfmem, sample, settings, request.seed)
    profile_s = budget.clock.elapsed()
    budget.settle(*refiner.read_costs(problem, 0.0))
    plan = planning.initial_plan(rules, measured.t1, measured.t2, budget_s=request.budget_s,
                                 spent_s=budget.spent_at_settle_s, reserve_s=budget.reserve_s, max_trials=None)
    with budget.phase("filtering_s"):
        scope = planning.filtering_scope(plan, budget.available_s, phases.vectorised(request.tfmem),
                                         problem.context.space.size)
        scored = phases.score_candidates(problem, scope, budget.seconds_from_now(scope.seconds), request.tfmem,
                                         request.seed, None, None, lambda: None, report)
        candidates = planning.choose_candidates(scored.ranked, measured.cost, plan, budget.available_s, None)
    revision = phases.revise(problem, plan, candidates, sample, settings, rules, budget)
    return phases.plan_summary(problem, budget, measured, plan, scope, revision, settings, profile_s)


def run_model_selection(session: Session, dataset: str, budget_s: float | None, label: str = "label",
                        tfmem: str = "express_flow", refinement: str = "auto", seed: int = 0,
                        interrupt=Hooks.interrupt, sleep=Hooks.sleep, notice=Hooks.notice,
                        started: float | None = None, task: str = "auto", metric: str | None = None,
                        max_params: int | None = None, max_trials: int | None = None,
                        families: str = "auto", deploy: str = "if_better", warm_start: bool = True,
                        numeric_encoding: str = "auto") -> dict:
    """:func:`select` with the SQL function's arguments (``interrupt``, ``sleep``, ``notice``:
    see :class:`Hooks`)."""
    request = SelectionRequest(dataset, budget_s, label, tfmem, refinement, seed, task, metric, max_params,
                               max_trials, families, deploy, warm_start, numeric_encoding)
    return select(session, request, Hooks(interrupt, sleep, notice), started)


def plan_model_selection(session: Session, dataset: str, budget_s: float, label: str = "label",
                         tfmem: str = "express_flow", task: str = "auto") -> dict:
    """:func:`explain` with the SQL function's arguments."""
    return explain(session, SelectionRequest(dataset, budget_s, label, tfmem, task=task))
