"""Successive-halving cost and the budget split between filtering and refinement."""

import itertools
import math

import numpy as np
import pytest

from trails.coordinator import schedule
from trails.refinement.schedule import Rung, halving_rungs, planned_epochs


def test_rungs_of_a_hand_worked_case():
    assert halving_rungs(9, 3) == [Rung(9, 3, 3), Rung(3, 9, 6), Rung(1, 27, 18)]
    assert planned_epochs(9, 3) == 9 * 3 + 3 * 6 + 1 * 18 == 63
    # 10 models: 10 → 3 → 1 survivors at 1, 3, 9 epochs
    assert planned_epochs(10, 1) == 10 * 1 + 3 * 2 + 1 * 6 == 22


def test_rungs_stop_at_max_epochs_and_at_one_model():
    assert halving_rungs(100, 9, eta=3, max_epochs=27) == [Rung(100, 9, 9), Rung(33, 27, 18)]
    assert halving_rungs(1, 5) == [Rung(1, 5, 5)]
    assert halving_rungs(2, 1) == [Rung(2, 1, 1), Rung(1, 3, 2)]  # the best of 2 trains on
    assert halving_rungs(5, 27) == [Rung(5, 27, 27)]


@pytest.mark.parametrize("arguments", [(0, 1), (3, 0), (3, 28), (3, 1, 1), (3, 1, 3, 0)])
def test_bad_halving_arguments_are_rejected(arguments):
    with pytest.raises(ValueError, match="must be"):
        halving_rungs(*arguments)


def _simulate_successive_halving(k, u, eta, max_epochs, rng):
    """Successive halving written from its definition, counting every epoch trained."""
    trained = {model: 0 for model in range(k)}
    quality = {model: rng.random() for model in range(k)}
    alive, target, epochs = list(range(k)), u, 0
    while True:
        for model in alive:
            while trained[model] < target:
                trained[model] += 1
                epochs += 1
        if len(alive) == 1 or target >= max_epochs:
            return epochs
        alive = sorted(alive, key=quality.get, reverse=True)[:max(1, len(alive) // eta)]
        target = min(target * eta, max_epochs)


def _run_loop_built_on_rungs(k, u, eta, max_epochs, rng):
    """The loop refinement runs: train each survivor to the rung's total (warm start), keep the
    next rung's number of best models; count epochs trained."""
    rungs = halving_rungs(k, u, eta, max_epochs)
    trained = np.zeros(k, dtype=int)
    quality = rng.random(k)
    alive = np.arange(k)
    epochs = 0
    for index, rung in enumerate(rungs):
        assert len(alive) == rung.n_models
        for model in alive:
            assert rung.total_epochs - trained[model] == rung.epochs_this_rung
            epochs += rung.total_epochs - trained[model]
            trained[model] = rung.total_epochs
        if index + 1 < len(rungs):
            alive = alive[np.argsort(-quality[alive])][:rungs[index + 1].n_models]
    return epochs


def test_planned_epochs_equals_the_epochs_a_halving_loop_trains():
    rng = np.random.default_rng(0)
    for k, u, eta, max_epochs in itertools.product([1, 2, 3, 5, 9, 10, 28, 81, 100], [1, 2, 3, 9, 27],
                                                   [2, 3, 4], [9, 27, 30]):
        if u > max_epochs:
            continue
        planned = planned_epochs(k, u, eta, max_epochs)
        assert planned == _simulate_successive_halving(k, u, eta, max_epochs, rng), (k, u, eta, max_epochs)
        assert planned == _run_loop_built_on_rungs(k, u, eta, max_epochs, rng), (k, u, eta, max_epochs)


def _cost(k, u, t1, t2, eta=3, ratio=100, max_epochs=27):
    return ratio * k * t1 + planned_epochs(k, u, eta, max_epochs) * t2


@pytest.mark.parametrize("T, t1, t2", [(10, 1e-4, 0.5), (60, 2e-3, 1.0), (600, 1e-4, 0.5),
                                       (3600, 0.05, 3.0), (45, 1e-3, 0.01), (1e5, 1e-3, 0.01)])
def test_schedule_respects_the_budget_with_largest_k_then_largest_u(T, t1, t2):
    plan = schedule(T, t1, t2)
    assert plan.n == 100 * plan.k and plan.k >= 2 and 1 <= plan.u <= 27
    assert plan.filtering_s == pytest.approx(plan.n * t1)
    assert plan.refinement_s == pytest.approx(planned_epochs(plan.k, plan.u) * t2)
    assert plan.total_s <= T
    assert list(plan.rungs) == halving_rungs(plan.k, plan.u)
    assert _cost(plan.k + 1, 1, t1, t2) > T  # no larger K fits at all
    assert plan.u == 27 or _cost(plan.k, plan.u + 1, t1, t2) > T


def test_schedule_passes_eta_ratio_and_max_epochs_through():
    plan = schedule(100, 1e-3, 0.2, eta=2, ratio=10, max_epochs=9)
    assert plan.n == 10 * plan.k
    assert plan.total_s <= 100
    assert list(plan.rungs) == halving_rungs(plan.k, plan.u, 2, 9)
    assert 10 * (plan.k + 1) * 1e-3 + planned_epochs(plan.k + 1, 1, 2, 9) * 0.2 > 100


def test_filtering_only_when_two_models_cannot_be_refined():
    # K = 2, U = 1 costs 200·t1 + 4 epochs (2×1 + 1×2)
    plan = schedule(3.0, 0.001, 1.0)
    assert (plan.k, plan.u, plan.rungs) == (1, 0, ())
    assert plan.filtering_only and plan.refinement_s == 0
    assert plan.n == math.floor(3.0 / 0.001)
    assert schedule(4.2, 0.001, 1.0).k == 2  # 0.2 + 4 fits


@pytest.mark.parametrize("arguments, fragment", [
    ((0, 1, 1), "time budget"), ((-5, 1, 1), "time budget"), ((10, 0, 1), "t1"), ((10, -1, 1), "t1"),
    ((10, 1, 0), "t2"), ((float("nan"), 1, 1), "time budget"), ((0.5, 1, 1), "cannot score even one"),
])
def test_schedule_rejects_bad_inputs(arguments, fragment):
    with pytest.raises(ValueError, match=fragment):
        schedule(*arguments)
