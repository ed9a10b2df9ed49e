"""The budget policy (trails.selection.planning) on fake measurements: no database, no clock."""

from __future__ import annotations

import pytest

from trails.cost_model import CostModel
from trails.errors import TrailsError
from trails.selection import planning
from trails.selection.planning import (CHEAPEST_SLACK, FILTERING_ONLY_SHARE, FINISH_SHARE, MIN_FINAL_EPOCHS,
                                       Candidates, Rules)

RULES = Rules(eta=3, ratio=100, max_epochs=27)
# seconds per epoch = 0.1 + 1e-6 · MACs (one iteration per epoch, in_features 100)
COST = CostModel(overhead_s=0.1, per_mac_s=1e-6, in_features=100, iterations_per_epoch=1)


def ranked(*archs):
    return [(arch, float(-i)) for i, arch in enumerate(archs)]


def test_time_plan_fits_the_halving_share():
    plan = planning.initial_plan(RULES, 1e-4, 0.5, budget_s=60, spent_s=5, reserve_s=1, max_trials=None)
    available = 60 - 5 - 1
    assert plan.k >= 2 and plan.u >= 1
    assert plan.total_s <= (1 - FINISH_SHARE) * available + 1e-9
    assert plan.n == RULES.ratio * plan.k


def test_filtering_only_when_two_candidates_do_not_fit():
    t1, t2 = 1e-3, 30.0  # one epoch costs more than the whole halving share
    plan = planning.initial_plan(RULES, t1, t2, budget_s=20, spent_s=2, reserve_s=1, max_trials=None)
    available = 20 - 2 - 1
    assert plan.filtering_only and plan.k == 1 and plan.u == 0
    assert planning.MIN_ARCHS_SCORED <= plan.n <= max(planning.MIN_ARCHS_SCORED,
                                                        FILTERING_ONLY_SHARE * available / t1)


def test_budget_too_small_is_refused_with_what_it_needs():
    with pytest.raises(TrailsError) as error:
        planning.initial_plan(RULES, 0.01, 0.5, budget_s=5, spent_s=4.5, reserve_s=0.6, max_trials=None)
    assert "too small" in error.value.message and error.value.hint.startswith("give at least")


def test_max_trials_caps_k_and_keeps_rungs_consistent():
    free = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=300, spent_s=5, reserve_s=1, max_trials=None)
    assert free.k > 3
    capped = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=300, spent_s=5, reserve_s=1, max_trials=3)
    assert capped.k == 3 and capped.u == free.u
    assert capped.rungs == RULES.rungs(3, free.u, finish=True)
    assert capped.rungs[0].n_models == 3


def test_trials_budget_reaches_the_full_epochs():
    plan = planning.initial_plan(RULES, 1e-4, 0.5, budget_s=None, spent_s=0, reserve_s=0, max_trials=9)
    assert (plan.n, plan.k) == (900, 9)
    assert plan.rungs[0].n_models == 9
    assert plan.rungs[-1].total_epochs == RULES.max_epochs


@pytest.mark.parametrize("k", [1, 2, 3, 4, 9, 10, 27, 81])
def test_first_rung_for_full_epochs_ends_at_max_epochs(k):
    u = planning.first_rung_for_full_epochs(k, 3, 27)
    rungs = RULES.rungs(k, u)
    assert 1 <= u <= 27 and rungs[-1].total_epochs == 27


def test_trials_revision_takes_the_candidates_found():
    plan = planning.initial_plan(RULES, 1e-4, 0.5, budget_s=None, spent_s=0, reserve_s=0, max_trials=9)
    found = Candidates([(8,), (16,), (32,), (64,)])  # max_params left four
    revision = planning.revise_plan(RULES, plan, found, in_trials=True)
    assert revision.plan.k == 4 and revision.rung_epochs == RULES.max_epochs
    assert revision.plan.rungs[-1].total_epochs == RULES.max_epochs
    assert revision.candidates.archs == found.archs and revision.epoch_s is None


def test_revision_keeps_k_at_most_k_and_the_largest_u_that_fits():
    plan = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=120, spent_s=5, reserve_s=1, max_trials=None)
    candidates = Candidates([(w,) for w in range(1, plan.k + 1)], epoch_cap_s=1.0)
    epoch_s, evaluation_s, seconds_left = 0.4, 0.1, 60.0
    revision = planning.revise_plan(RULES, plan, candidates, in_trials=False, epoch_s=epoch_s,
                                    evaluation_s=evaluation_s, seconds_left=seconds_left)
    k, u = revision.plan.k, revision.plan.u
    halving_s = (1 - FINISH_SHARE) * seconds_left
    assert 1 <= k <= plan.k and revision.candidates.archs == candidates.archs[:k]
    assert revision.previous == plan and revision.halving_s == pytest.approx(halving_s)
    assert planning.refinement_seconds(RULES, k, u, epoch_s, evaluation_s) <= halving_s
    assert revision.plan.refinement_s == pytest.approx(planning.refinement_seconds(RULES, k, u, epoch_s, evaluation_s))
    if k < len(candidates.archs):  # one more candidate would not fit
        assert planning.refinement_seconds(RULES, k + 1, 1, epoch_s, evaluation_s) > halving_s
    if k > 1 and u < RULES.max_epochs:  # one more first-rung epoch would not fit
        assert planning.refinement_seconds(RULES, k, u + 1, epoch_s, evaluation_s) > halving_s


def test_revision_to_one_candidate_trains_one_epoch():
    plan = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=120, spent_s=5, reserve_s=1, max_trials=None)
    candidates = Candidates([(8,), (16,), (32,)], epoch_cap_s=1.0)
    revision = planning.revise_plan(RULES, plan, candidates, in_trials=False, epoch_s=50.0,
                                    evaluation_s=1.0, seconds_left=20.0)
    assert revision.plan.k == 1 and revision.plan.u == 1 and revision.rung_epochs == 1
    assert revision.plan.rungs == () and revision.candidates.archs == [(8,)]


def test_one_candidate_needs_no_timing():
    plan = planning.initial_plan(RULES, 1e-3, 30.0, budget_s=20, spent_s=2, reserve_s=1, max_trials=None)
    assert not planning.needs_timing(plan, in_trials=False)
    assert not planning.needs_timing(plan, in_trials=True)
    revision = planning.revise_plan(RULES, plan, Candidates([(8,)], 1.0), in_trials=False)
    assert revision.plan == plan and revision.rung_epochs == 1


def test_candidates_are_those_the_finishing_phase_can_train():
    archs = ranked((512, 512), (256, 256), (64, 64), (32, 32), (16, 16))
    plan = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=300, spent_s=5, reserve_s=1, max_trials=None)
    available = 6.0  # 3 s of finishing: at most 0.2 s/epoch
    chosen = planning.choose_candidates(archs, COST, plan, available, None)
    finish_s = FINISH_SHARE * available
    assert chosen.epoch_cap_s == pytest.approx(max(finish_s / MIN_FINAL_EPOCHS,
                                                    CHEAPEST_SLACK * float(COST.epoch_seconds([(16, 16)])[0])))
    assert chosen.archs and all(float(COST.epoch_seconds([arch])[0]) <= chosen.epoch_cap_s for arch in chosen.archs)
    assert chosen.archs[0] == (256, 256)  # 0.19 s/epoch; 512x512 costs 0.41
    order = [arch for arch, _ in archs]
    assert chosen.archs == sorted(chosen.archs, key=order.index)  # best-scored first


def test_nothing_affordable_keeps_the_near_cheapest():
    archs = ranked((512, 512), (256, 256), (16, 16))
    plan = planning.initial_plan(RULES, 1e-5, 0.05, budget_s=300, spent_s=5, reserve_s=1, max_trials=None)
    chosen = planning.choose_candidates(archs, COST, plan, available_s=0.5, max_trials=None)
    cheapest = float(COST.epoch_seconds([(16, 16)])[0])
    assert chosen.epoch_cap_s == pytest.approx(CHEAPEST_SLACK * cheapest)
    assert chosen.archs == [(16, 16)]


def test_trials_candidates_are_the_best_scored():
    archs = ranked((512, 512), (256, 256), (16, 16))
    plan = planning.initial_plan(RULES, 1e-4, 0.5, budget_s=None, spent_s=0, reserve_s=0, max_trials=2)
    chosen = planning.choose_candidates(archs, COST, plan, None, 2)
    assert chosen.archs == [(512, 512), (256, 256)] and chosen.epoch_cap_s is None


def test_filtering_scope():
    plan = planning.initial_plan(RULES, 1e-4, 0.5, budget_s=60, spent_s=5, reserve_s=1, max_trials=None)
    whole = planning.filtering_scope(plan, 54.0, whole_space=True, space_size=160_000)
    assert (whole.n, whole.strategy) == (160_000, "exhaustive")
    assert whole.seconds == pytest.approx(FILTERING_ONLY_SHARE * 54.0)
    sampled = planning.filtering_scope(plan, 54.0, whole_space=False, space_size=160_000)
    assert (sampled.n, sampled.strategy) == (plan.n, "evolution") and sampled.seconds > plan.filtering_s
    assert planning.filtering_scope(plan, None, whole_space=True, space_size=10).seconds is None
    assert planning.scores_whole_space(True, planning.WHOLE_SPACE_MAX_ARCHS)
    assert not planning.scores_whole_space(True, planning.WHOLE_SPACE_MAX_ARCHS + 1)
    assert not planning.scores_whole_space(False, 10)


def test_costliest_is_the_arch_with_most_macs():
    assert planning.costliest([(8, 8), (64, 8), (16, 16)], 100) == (64, 8)
