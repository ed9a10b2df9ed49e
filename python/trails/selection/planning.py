"""How a call spends its budget: pure functions of measurements, no database, no clock.

The budget policy of ``model_selection``, consulted three times per call:

1. :func:`initial_plan` — before filtering, from t1 and t2 (:mod:`trails.coordinator`'s
   ``schedule`` over the share successive halving gets; or, budgeted in trials, exactly
   ``max_trials`` candidates to the full epochs);
2. :func:`filtering_scope` and :func:`choose_candidates` — how many archs filtering scores and
   which of the ranked archs become candidates (those the finishing phase can train enough);
3. :func:`revise_plan` — with the candidates known and their training measured, the largest
   K′ ≤ K, then the largest U, that fit.

``model_selection_plan`` calls the same functions, so what it reports is what a call does.

The finishing phase: after successive halving the winner trains on to the deadline with its
learning rate annealed over the epochs that fit; it gets ``FINISH_SHARE`` of the time left.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from trails.config import load_config
from trails.coordinator import Plan, schedule
from trails.cost_model import CostModel, arch_macs
from trails.errors import TrailsError
from trails.refinement.schedule import halving_rungs

# Share of the time left after reading and profiling that the winner's finishing phase gets:
# the coordinator plans filtering and successive halving in the rest, and the winner then
# trains on to the deadline with its learning rate annealed over the epochs that fit.
FINISH_SHARE = 0.5
# Candidates are chosen among the archs the finishing phase can train this many epochs: on a
# CPU the widest archs, which the flow TFMEMs rank first, cost several times a narrow one
# per epoch, and an arch stopped after an epoch or two loses to a cheaper one trained on.
# 15 rather than 5: frappe, 40 s, 1 thread, seeds 0 and 1: test AUC 0.9766 / 0.9774 against
# 0.9751 / 0.9753 (narrower archs, 3x the epochs); 60 s, 2 threads: 0.9762 against 0.9717.
MIN_FINAL_EPOCHS = 15
# When the budget is too short for that, archs costing up to this many times the cheapest one
# stay candidates: per-iteration overhead dominates narrow archs, so they cost about the same.
CHEAPEST_SLACK = 1.5
# When not even two candidates fit (filtering only), scoring gets at most this share.
FILTERING_ONLY_SHARE = 0.1
# A vectorised TFMEM scores a whole space of up to this many archs in about a second (frappe's
# 160,000 in 0.5 s): cheaper than any sample of it, so the whole space is scored.
WHOLE_SPACE_MAX_ARCHS = 200_000
# Sampled filtering (evolution) may run this much over its planned seconds, plus a second.
FILTERING_DEADLINE_FACTOR = 1.5
FILTERING_DEADLINE_SLACK_S = 1.0
# The least seconds a whole-space scoring may take before it ranks what it has.
WHOLE_SPACE_MIN_S = 0.1
# A budget must leave more than this many arch scorings (t1) after reading and profiling.
MIN_ARCHS_SCORED = 10


@dataclass(frozen=True)
class Rules:
    """``[coordinator]`` of the configuration: η, N/K, the most epochs R and how many recipes of
    the portfolio an MLP arch races with (:mod:`trails.refinement.recipe`), read once."""

    eta: int = 3
    ratio: int = 100
    max_epochs: int = 27
    mlp_recipes: int = 4

    @classmethod
    def from_config(cls, config=None) -> "Rules":
        config = config if config is not None else load_config()
        return cls(config.getint("coordinator", "eta"), config.getint("coordinator", "ratio"),
                   config.getint("coordinator", "max_epochs"),
                   config.getint("coordinator", "mlp_recipes", fallback=cls.mlp_recipes))

    def rungs(self, k: int, u: int, finish: bool = False) -> tuple:
        """Successive halving's rungs over ``k`` models from ``u`` epochs (to R)."""
        return tuple(halving_rungs(k, u, self.eta, self.max_epochs, finish=finish))


@dataclass(frozen=True)
class Candidates:
    """The archs successive halving gets, best-scored first, and the cost cap (seconds per
    epoch) they were chosen under (None when budgeted in trials)."""

    archs: list
    epoch_cap_s: float | None = None


@dataclass(frozen=True)
class FilteringScope:
    """How many archs filtering scores, how (a search strategy), and in how many seconds at
    most (None: no deadline)."""

    n: int
    strategy: str
    seconds: float | None


@dataclass(frozen=True)
class Revision:
    """:func:`revise_plan`'s answer: the plan and candidates successive halving runs, the most
    epochs a candidate trains in the rungs, and what the revision was based on (None in
    trials or with one candidate: nothing was measured)."""

    plan: Plan
    candidates: Candidates
    rung_epochs: int
    epoch_s: float | None = None
    evaluation_s: float | None = None
    seconds_left: float | None = None
    previous: Plan | None = None

    @property
    def halving_s(self) -> float | None:
        return None if self.seconds_left is None else (1 - FINISH_SHARE) * self.seconds_left


def initial_plan(rules: Rules, t1: float, t2: float, *, budget_s: float | None, spent_s: float,
                 reserve_s: float, max_trials: int | None) -> Plan:
    """The plan before filtering.

    Budgeted in seconds: the coordinator's N, K, U for the share of ``budget_s − spent_s −
    reserve_s`` that successive halving gets (``1 − FINISH_SHARE``); when not even K = 2 fits,
    filtering only, scoring at most ``FILTERING_ONLY_SHARE`` of it; K capped at ``max_trials``.
    Budgeted in trials (``budget_s`` None): N = ratio · ``max_trials``, K = ``max_trials``, U
    such that the last rung reaches R.

    Raises:
        TrailsError: when the budget leaves no more than ``MIN_ARCHS_SCORED`` scorings.
    """
    if budget_s is None:
        u = first_rung_for_full_epochs(max_trials, rules.eta, rules.max_epochs)
        n = max_trials * rules.ratio
        return Plan(n, max_trials, u, n * t1, 0.0, rules.rungs(max_trials, u))
    available = budget_s - spent_s - reserve_s
    if available <= t1 * MIN_ARCHS_SCORED:
        raise TrailsError(
            f"a budget of {budget_s:g} s is too small for this dataset",
            detail=f"{spent_s:.1f} s went to reading and profiling and {reserve_s:.1f} s are needed "
                   f"to evaluate and store the model, leaving {available:.1f} s",
            hint=f"give at least {spent_s + reserve_s + 2:.0f} s")
    halving_s = available * (1 - FINISH_SHARE)
    plan = schedule(halving_s, t1, t2, eta=rules.eta, ratio=rules.ratio, max_epochs=rules.max_epochs,
                    finish=True)
    if plan.filtering_only:
        # Not even K = 2 fits. TRAILS would score N = T/t1 archs and return the top one
        # untrained; here the top one is the single candidate the finishing phase trains,
        # so scoring keeps to a tenth of the time and one epoch's time is kept for it.
        n = max(MIN_ARCHS_SCORED, int(max(0.0, min(halving_s - t2, FILTERING_ONLY_SHARE * available)) / t1))
        if n < plan.n:
            plan = dataclasses.replace(plan, n=n, filtering_s=n * t1)
    if max_trials is not None and plan.k > max_trials:
        plan = dataclasses.replace(plan, k=max_trials,
                                   rungs=rules.rungs(max_trials, plan.u, finish=True) if plan.u else ())
    return plan


def scores_whole_space(vectorised: bool, space_size: int) -> bool:
    """Whether filtering scores every arch: a vectorised TFMEM (``vectorised``) and a space of
    at most ``WHOLE_SPACE_MAX_ARCHS`` archs."""
    return vectorised and space_size <= WHOLE_SPACE_MAX_ARCHS


def filtering_scope(plan: Plan, available_s: float | None, whole_space: bool, space_size: int) -> FilteringScope:
    """What filtering scores: the whole space (exhaustive) when ``whole_space``, in at most
    ``FILTERING_ONLY_SHARE`` of ``available_s``; else the plan's N by evolution, in at most
    ``FILTERING_DEADLINE_FACTOR`` times its planned seconds plus a second. No limit in trials
    (``available_s`` None)."""
    if whole_space:  # about a second for frappe's 160,000; a tight budget ranks what its share allows
        seconds = None if available_s is None else max(WHOLE_SPACE_MIN_S, FILTERING_ONLY_SHARE * available_s)
        return FilteringScope(space_size, "exhaustive", seconds)
    seconds = (None if available_s is None
               else plan.filtering_s * FILTERING_DEADLINE_FACTOR + FILTERING_DEADLINE_SLACK_S)
    return FilteringScope(plan.n, "evolution", seconds)


def finish_seconds(available_s: float) -> float:
    """The finishing phase's share of ``available_s``."""
    return FINISH_SHARE * available_s


def choose_candidates(ranked: list, cost: CostModel, plan: Plan, available_s: float | None,
                      max_trials: int | None) -> Candidates:
    """The candidates among ``ranked`` ((arch, score), best first): in trials, the
    ``max_trials`` best; else the plan's K best among the archs the finishing phase can train
    ``MIN_FINAL_EPOCHS`` epochs (:func:`affordable_candidates`)."""
    if available_s is None:
        return Candidates([arch for arch, _ in ranked[:max_trials]])
    archs, cap = affordable_candidates(ranked, cost, plan.k, finish_seconds(available_s))
    return Candidates(archs, cap)


def affordable_candidates(ranked: list, cost: CostModel, k: int, finish_s: float) -> tuple[list, float]:
    """The ``k`` best-scored archs of ``ranked`` among those the finishing phase can train
    ``MIN_FINAL_EPOCHS`` epochs in ``finish_s`` seconds — or, when too few can, among those
    within ``CHEAPEST_SLACK`` of the cheapest arch's cost — and that cap in seconds per epoch."""
    archs = np.array([arch for arch, _ in ranked], dtype=np.int64)
    epoch_s = cost.epoch_seconds(archs)
    cap = epoch_cap(finish_s, float(epoch_s.min()))
    chosen = np.flatnonzero(epoch_s <= cap)[:max(1, k)]
    return [ranked[i][0] for i in chosen], cap


def epoch_cap(finish_s: float, cheapest_epoch_s: float) -> float:
    """The most seconds per epoch a candidate may cost: ``MIN_FINAL_EPOCHS`` of it fit in
    ``finish_s``, the finishing phase's share — or, when even the cheapest arch
    (``cheapest_epoch_s``) does not fit, ``CHEAPEST_SLACK`` times the cheapest."""
    return max(finish_s / MIN_FINAL_EPOCHS, CHEAPEST_SLACK * cheapest_epoch_s)


def needs_timing(plan: Plan, in_trials: bool) -> bool:
    """Whether :func:`revise_plan` needs the candidates' measured training cost: budgeted in
    seconds with more than one candidate."""
    return not in_trials and plan.k > 1


def costliest(archs: list, in_features: int) -> tuple:
    """The arch of ``archs`` with the most multiply-accumulates per row (the one to time)."""
    return max(archs, key=lambda arch: arch_macs(arch, in_features))


def revise_plan(rules: Rules, plan: Plan, candidates: Candidates, *, in_trials: bool,
                epoch_s: float | None = None, evaluation_s: float | None = None,
                seconds_left: float | None = None) -> Revision:
    """The plan successive halving really runs, with the candidates known.

    In trials: K = the candidates filtering found (fewer than ``max_trials`` when
    ``max_params`` left fewer), U such that the last rung reaches R. In seconds, with K > 1 and
    the costliest candidate's ``epoch_s`` / ``evaluation_s`` measured: the largest K′ ≤ K
    (the best-scored K′) whose halving over U = 1 fits ``(1 − FINISH_SHARE)`` of
    ``seconds_left``, then the largest U; K′ = 1 trains one epoch and leaves the rest to the
    finishing phase. With K = 1 the plan stands.
    """
    if in_trials:
        k = len(candidates.archs)
        u = first_rung_for_full_epochs(k, rules.eta, rules.max_epochs)
        revised = dataclasses.replace(plan, k=k, u=u, rungs=rules.rungs(k, u))
        return Revision(revised, candidates, rules.max_epochs, previous=plan)
    if plan.k <= 1:
        return Revision(plan, candidates, 1, previous=plan)
    halving_s = (1 - FINISH_SHARE) * seconds_left

    def fits(k: int, u: int) -> bool:
        return refinement_seconds(rules, k, u, epoch_s, evaluation_s) <= halving_s

    k = max([k for k in range(1, len(candidates.archs) + 1) if fits(k, 1)], default=1)
    # one candidate: one epoch, then the finishing phase trains it on with an annealed rate
    u = max([u for u in range(1, rules.max_epochs + 1) if fits(k, u)], default=1) if k > 1 else 1
    revised = dataclasses.replace(plan, k=k, u=u, rungs=rules.rungs(k, u, finish=True),
                                  refinement_s=refinement_seconds(rules, k, u, epoch_s, evaluation_s))
    kept = dataclasses.replace(candidates, archs=candidates.archs[:k])
    return Revision(revised, kept, rules.max_epochs if k > 1 else 1, epoch_s, evaluation_s, seconds_left, plan)


def refinement_seconds(rules: Rules, k: int, u: int, epoch_s: float, evaluation_s: float) -> float:
    """Seconds successive halving over ``k`` models with first rung ``u`` costs: every rung's
    models train its epochs and are evaluated once."""
    return sum(r.n_models * (r.epochs_this_rung * epoch_s + evaluation_s) for r in rules.rungs(k, u, finish=True))


def first_rung_for_full_epochs(k: int, eta: int, max_epochs: int) -> int:
    """U such that successive halving over ``k`` models ends with its last rung at
    ``max_epochs`` (a selection budgeted in trials trains its winner to the full epoch count)."""
    rungs = len(halving_rungs(k, 1, eta, max_epochs))
    return max(1, min(max_epochs, -(-max_epochs // eta ** (rungs - 1))))
