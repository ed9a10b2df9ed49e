"""The per-arch cost model and the cost-aware choice of candidates."""

import numpy as np
import pytest

from trails.cost_model import CostModel, arch_macs, macs_of_archs
from trails.errors import TrailsError
from trails.refinement.schedule import halving_rungs, planned_epochs
from trails.selection import MIN_FINAL_EPOCHS, affordable_candidates


def test_macs_by_hand():
    assert arch_macs((8, 16), 100) == 100 * 8 + 8 * 16 + 16 * 2
    archs = np.array([(8, 16), (512, 4)])
    np.testing.assert_array_equal(macs_of_archs(archs, 100), [arch_macs(a, 100) for a in archs])


def test_the_fitted_line_goes_through_exact_timings():
    overhead, per_mac = 0.004, 2e-8
    archs = [(8, 8), (256, 256), (512, 512)]
    timings = [(arch, overhead + per_mac * arch_macs(arch, 100)) for arch in archs]
    cost = CostModel.fit(timings, 100, 200)
    assert cost.overhead_s == pytest.approx(overhead, rel=1e-9)
    assert cost.per_mac_s == pytest.approx(per_mac, rel=1e-9)
    assert cost.epoch_seconds(np.array([(64, 64)]))[0] == pytest.approx(
        200 * (overhead + per_mac * arch_macs((64, 64), 100)), rel=1e-9)


def test_noisy_timings_never_give_negative_coefficients():
    flat = CostModel.fit([((8, 8), 0.010), ((512, 512), 0.009)], 100, 10)  # noise: wider looks cheaper
    assert flat.per_mac_s == 0 and flat.overhead_s == pytest.approx(0.0095)
    steep = CostModel.fit([((8, 8), 1e-6), ((512, 512), 0.02)], 100, 10)  # the line would cross 0
    assert steep.overhead_s == 0 and steep.per_mac_s > 0
    with pytest.raises(TrailsError):
        CostModel.fit([], 100, 10)


def test_candidates_are_the_best_scored_archs_the_finishing_phase_can_train():
    cost = CostModel(0.001, 1e-7, 100, 100)  # an epoch: 0.1 s + 1e-5 s per MAC
    ranked = [((512, 512), 9.0), ((256, 256), 8.0), ((512, 8), 7.0), ((64, 64), 6.0), ((8, 8), 5.0)]
    epoch_s = {arch: float(cost.epoch_seconds(np.array([arch]))[0]) for arch, _ in ranked}
    finish_s = MIN_FINAL_EPOCHS * epoch_s[(256, 256)]  # 256-256 just affordable, 512-512 not
    chosen, cap = affordable_candidates(ranked, cost, 2, finish_s)
    assert chosen == [(256, 256), (512, 8)] and cap == pytest.approx(epoch_s[(256, 256)])
    # too little time for anyone: archs near the cheapest one's cost
    chosen, _ = affordable_candidates(ranked, cost, 3, 1e-6)
    assert chosen and all(epoch_s[arch] <= 1.5 * epoch_s[(8, 8)] for arch in chosen)


def test_a_finishing_phase_takes_over_the_single_model_rungs():
    assert halving_rungs(9, 3, 3, 27, finish=True) == halving_rungs(9, 3, 3, 27)[:2]
    assert planned_epochs(9, 3, 3, 27, finish=True) == 9 * 3 + 3 * 6
    assert halving_rungs(1, 2, 3, 27, finish=True) == []  # straight to the finishing phase
