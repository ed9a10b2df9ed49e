"""Splitting the time budget between filtering (scoring N archs) and refinement (training K).

Filtering scores N = ratio · K archs at t1 seconds each; refinement runs successive halving over
the top K, U epochs per model in its first rung, at t2 seconds per epoch of one model, costing
``planned_epochs(K, U, η, max_epochs)`` epochs (:mod:`trails.refinement.schedule`, which counts
warm-started survivors correctly). :func:`schedule` picks the largest K, then the largest U, with

    N · t1 + planned_epochs(K, U) · t2 ≤ T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trails.errors import TrailsError
from trails.refinement.schedule import Rung, halving_rungs, planned_epochs


@dataclass(frozen=True)
class Plan:
    """How one model selection spends its budget.

    Attributes:
        n: archs to score in filtering (N).
        k: archs refined (K). k = 1 with u = 0 means *filtering only*: the budget cannot pay
            for successive halving over two models, and the best-scored arch is the answer,
            untrained by refinement.
        u: epochs per model in the first rung (U); 0 when filtering only.
        filtering_s: planned filtering seconds, n · t1.
        refinement_s: planned refinement seconds, planned_epochs · t2 (0 when filtering only).
        rungs: the successive-halving rungs; empty when filtering only.
    """

    n: int
    k: int
    u: int
    filtering_s: float
    refinement_s: float
    rungs: tuple[Rung, ...]

    @property
    def filtering_only(self) -> bool:
        return not self.rungs

    @property
    def total_s(self) -> float:
        return self.filtering_s + self.refinement_s


def schedule(T: float, t1: float, t2: float, eta: int = 3, ratio: int = 100, max_epochs: int = 27,
             finish: bool = False) -> Plan:
    """The plan with the largest K, then the largest U, that fits the budget.

    Args:
        T: time budget, seconds, > 0.
        t1: seconds to score one arch, > 0.
        t2: seconds per training epoch of one model, > 0.
        eta: successive halving's reduction factor η, ≥ 2.
        ratio: N / K, ≥ 1.
        max_epochs: most epochs any model trains, ≥ 1.
        finish: the winner trains on in a finishing phase after the halving, which the plan
            does not cost: rungs of a single model are left out (``halving_rungs(finish=True)``).

    Returns:
        A :class:`Plan` with ``filtering_s + refinement_s ≤ T``. When even K = 2, U = 1 does not
        fit: filtering only, N = ⌊T / t1⌋, k = 1, u = 0. N is not capped at the size of the
        search space: the search strategy scores every arch once when N exceeds it.

    Raises:
        TrailsError (a ValueError): for T, t1 or t2 ≤ 0 (or not finite), eta < 2, ratio < 1,
        max_epochs < 1, or T < t1 (not even one arch can be scored).
    """
    _validate(T, t1, t2, eta, ratio, max_epochs)

    def fits(k: int, u: int) -> bool:
        return ratio * k * t1 + planned_epochs(k, u, eta, max_epochs, finish) * t2 <= T

    if not fits(2, 1):
        n = int(math.floor(T / t1))
        return Plan(n=n, k=1, u=0, filtering_s=n * t1, refinement_s=0.0, rungs=())
    k = _largest(lambda k: fits(k, 1), low=2, high=_k_upper_bound(T, t1, t2, ratio))
    u = _largest(lambda u: fits(k, u), low=1, high=max_epochs)
    epochs = planned_epochs(k, u, eta, max_epochs, finish)
    return Plan(n=ratio * k, k=k, u=u, filtering_s=ratio * k * t1, refinement_s=epochs * t2,
                rungs=tuple(halving_rungs(k, u, eta, max_epochs, finish)))


def _k_upper_bound(T: float, t1: float, t2: float, ratio: int) -> int:
    """K models cost at least ratio·K·t1 + K·t2 (each trains ≥ 1 epoch), so K ≤ T / (ratio·t1 + t2)."""
    return max(2, int(T / (ratio * t1 + t2)) + 1)


def _largest(feasible, low: int, high: int) -> int:
    """The largest x in [low, high] with feasible(x), for feasible monotone (true then false) and
    feasible(low) true."""
    while low < high:
        middle = (low + high + 1) // 2
        if feasible(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _validate(T, t1, t2, eta, ratio, max_epochs) -> None:
    for name, value in (("time budget T", T), ("t1 (seconds to score one arch)", t1),
                        ("t2 (seconds per training epoch)", t2)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise TrailsError(f"the {name} is {value!r}, but must be a finite number > 0")
    if int(eta) < 2:
        raise TrailsError(f"eta is {eta}, but must be eta >= 2")
    if int(ratio) < 1:
        raise TrailsError(f"ratio (N/K) is {ratio}, but must be ratio >= 1")
    if int(max_epochs) < 1:
        raise TrailsError(f"max_epochs is {max_epochs}, but must be max_epochs >= 1")
    if T < t1:
        raise TrailsError(f"the time budget {T} s cannot score even one arch ({t1} s each)",
                          hint="raise the time budget")
