"""Who enters the race (trails.selection.entrants): pure, no database, no clock."""

from __future__ import annotations

import dataclasses

import pytest

from trails.coordinator import Plan
from trails.families.mlp_config import MlpConfig
from trails.refinement.recipe import REGULARISED, WIDE
from trails.refinement.settings import TrainingSettings
from trails.selection import entrants
from trails.selection.entrants import MAX_ROUNDS_PER_UNIT, MIN_ROUNDS_PER_UNIT, TREES
from trails.selection.planning import Candidates, Revision, Rules

RULES = Rules(eta=3, ratio=100, max_epochs=27)
ARCHS = [(64, 64), (32, 32), (16, 16), (8, 8)]
PORTFOLIO = ["cheap", "wider", "slower", "regularised"]  # stand-ins: enter() only passes them on
BOTH = ("mlp", "gbdt")


def revision(k: int, u: int = 1) -> Revision:
    plan = Plan(n=100 * k, k=k, u=u, filtering_s=0.1, refinement_s=10.0, rungs=RULES.rungs(k, u, finish=True))
    return Revision(plan, Candidates(list(ARCHS[:k])), RULES.max_epochs if k > 1 else 1, epoch_s=0.5,
                    evaluation_s=0.1, seconds_left=30.0, previous=plan)


@pytest.mark.parametrize("k, expected", [(1, (1, 1)), (2, (1, 1)), (3, (1, 2)), (4, (2, 2)), (9, (4, 4))])
def test_auto_shares_slots_by_halves_and_both_families_always_enter(k, expected):
    assert entrants.shares(k, BOTH, mlp_available=len(ARCHS), trees_available=len(PORTFOLIO),
                           in_trials=False) == expected


def test_single_family_and_trials_budgets():
    assert entrants.shares(3, ("mlp",), 4, 4, in_trials=False) == (3, 0)
    assert entrants.shares(3, ("gbdt",), 4, 4, in_trials=False) == (0, 3)
    assert entrants.shares(9, ("gbdt",), 4, 4, in_trials=False) == (0, 4)  # the portfolio is the limit
    assert entrants.shares(1, BOTH, 4, 4, in_trials=True) == (1, 0)  # exactly max_trials = 1: an MLP
    assert entrants.shares(3, BOTH, 4, 4, in_trials=True) == (1, 2)


def test_a_trees_unit_costs_an_mlp_epoch_within_bounds():
    assert entrants.rounds_per_unit(1.0, 0.01, 50) == 100
    assert entrants.rounds_per_unit(1.0, 10.0, 50) == MIN_ROUNDS_PER_UNIT
    assert entrants.rounds_per_unit(100.0, 1e-6, 50) == MAX_ROUNDS_PER_UNIT
    assert entrants.rounds_per_unit(None, 0.01, 50) == 50 and entrants.rounds_per_unit(1.0, None, 50) == 50


def test_enter_alternates_families_and_replans_the_rungs():
    race = entrants.enter(revision(3), BOTH, RULES, TrainingSettings(), PORTFOLIO, in_trials=False, unit_s=0.5,
                          round_s=0.005)
    assert [c.family for c in race.candidates] == ["mlp", TREES, TREES]
    assert race.candidates[0].config == ARCHS[0] and [c.config for c in race.candidates[1:]] == PORTFOLIO[:2]
    assert race.plan.k == 3 and race.plan.rungs == RULES.rungs(3, 1, finish=True)
    assert race.settings.rounds_per_unit == 100 and race.count(TREES) == 2
    assert [c.config for c in race.reserves] == PORTFOLIO[2:]  # the trees with no slot wait, in order
    assert all(c.family == TREES for c in race.reserves)
    in_trials = entrants.enter(revision(3), BOTH, RULES, TrainingSettings(), PORTFOLIO, in_trials=True)
    assert in_trials.reserves == ()  # no deadline, no time left to fill


def test_one_planned_slot_still_races_both_families():
    race = entrants.enter(revision(1), BOTH, RULES, TrainingSettings(), PORTFOLIO, in_trials=False, unit_s=0.5,
                          round_s=0.01)
    assert [c.family for c in race.candidates] == ["mlp", TREES]
    assert race.plan.k == 2 and race.rung_epochs == 1 and race.plan.rungs[0].n_models == 2


def test_mlp_only_with_one_recipe_is_the_trails_race_unchanged():
    before = revision(3)
    one_recipe = dataclasses.replace(RULES, mlp_recipes=1)
    race = entrants.enter(before, ("mlp",), one_recipe, TrainingSettings(), PORTFOLIO, in_trials=False, unit_s=0.5,
                          round_s=0.01)
    assert race.plan == before.plan and [c.config for c in race.candidates] == ARCHS[:3]
    assert race.settings == TrainingSettings() and race.round_s is None and race.reserves == ()


def test_mlp_slots_pair_the_best_arch_with_each_recipe_then_the_next_archs_in_turn():
    race = entrants.enter(revision(4), ("mlp",), RULES, TrainingSettings(), PORTFOLIO, in_trials=False, unit_s=0.5,
                          round_s=0.01)
    assert [c.config for c in race.candidates] == [ARCHS[0], MlpConfig(ARCHS[0], WIDE), MlpConfig(ARCHS[0], REGULARISED),
                                                   MlpConfig(ARCHS[1], WIDE)]  # no numeric field: no bins
    assert race.candidates[1].text == "64-64/emb=16" and race.candidates[2].text == "64-64/drop=0.3,wd=0.1,eml2=0.001"
    # max_params bounds the run: the archs fit at the run's width, so no recipe widens the embedding
    bounded = entrants.enter(revision(4), ("mlp",), RULES, TrainingSettings(), PORTFOLIO, in_trials=False, unit_s=0.5,
                             round_s=0.01, max_nodes=10_000)
    assert [c.config for c in bounded.candidates] == [ARCHS[0], MlpConfig(ARCHS[0], REGULARISED),
                                                      MlpConfig(ARCHS[1], REGULARISED), ARCHS[2]]
    in_trials = entrants.enter(revision(4), ("mlp",), RULES, TrainingSettings(), PORTFOLIO, in_trials=True)
    assert [c.config for c in in_trials.candidates] == ARCHS  # max_trials: K archs with the run's recipe
