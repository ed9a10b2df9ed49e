"""The rungs of successive halving (Jamieson & Talwalkar, 2016; Li et al., 2018, Hyperband),
and the epochs they cost.

Rung i holds n_i models, n_0 = K and n_{i+1} = max(1, ⌊n_i / η⌋): the best n_{i+1} of rung i
survive. Every model of rung i is trained to ``total_epochs`` r_i = min(U · η^i, max_epochs) in
all; survivors keep their weights (warm start), so rung i trains each of its models for
r_i − r_{i−1} more epochs (r_{−1} = 0). The last rung is the first with a single model, or the
first that reaches ``max_epochs``. The loop in ``refinement/halving.py`` runs exactly these
rungs, so :func:`planned_epochs` is exactly the epochs it trains.

Example (K = 9, U = 3, η = 3, max_epochs = 27): rungs (9 models, to 3 epochs, +3),
(3, to 9, +6), (1, to 27, +18); planned epochs 9·3 + 3·6 + 1·18 = 63.

With a finishing phase (``finish=True``), the single survivor trains on to the deadline
instead of in a rung of its own: the rungs stop before the first rung of one model (so K = 1
has no rung: its candidate goes straight to the finishing phase). The example above then has
rungs (9, 3, +3) and (3, 9, +6): 45 epochs, and the winner continues from 9 epochs.
"""

from __future__ import annotations

from typing import NamedTuple

from trails.errors import TrailsError


class Rung(NamedTuple):
    """One rung: ``n_models`` models each trained to ``total_epochs`` epochs, of which
    ``epochs_this_rung`` are run in this rung."""

    n_models: int
    total_epochs: int
    epochs_this_rung: int


def halving_rungs(k: int, u: int, eta: int = 3, max_epochs: int = 27, finish: bool = False) -> list[Rung]:
    """The rungs of successive halving over ``k`` models (see the module docstring; ``finish``
    leaves out the final rung of a single model).

    Args:
        k: models entering (K), ≥ 1.
        u: epochs of every model in the first rung (U, the minimum resource r), 1 ≤ u ≤ max_epochs.
        eta: reduction factor η, ≥ 2: a rung keeps ⌊1/η⌋ of its models.
        max_epochs: no model trains more epochs than this (the maximum resource R), ≥ 1.

    Raises:
        TrailsError (a ValueError): for any argument outside its range.
    """
    _validate(k, u, eta, max_epochs)
    rungs: list[Rung] = []
    n_models, previous_total, rung = int(k), 0, 0
    while True:
        total = min(int(u) * int(eta) ** rung, int(max_epochs))
        if finish and n_models == 1:
            return rungs
        rungs.append(Rung(n_models, total, total - previous_total))
        if n_models == 1 or total >= max_epochs:
            return rungs
        n_models = max(1, n_models // int(eta))
        previous_total = total
        rung += 1


def planned_epochs(k: int, u: int, eta: int = 3, max_epochs: int = 27, finish: bool = False) -> int:
    """Epochs successive halving trains in all: Σ over rungs of n_models × epochs_this_rung."""
    return sum(rung.n_models * rung.epochs_this_rung
               for rung in halving_rungs(k, u, eta, max_epochs, finish))


def _validate(k, u, eta, max_epochs) -> None:
    if int(k) < 1:
        raise TrailsError(f"the number of models K is {k}, but must be K >= 1")
    if int(eta) < 2:
        raise TrailsError(f"the reduction factor eta is {eta}, but must be eta >= 2")
    if int(max_epochs) < 1:
        raise TrailsError(f"max_epochs is {max_epochs}, but must be max_epochs >= 1")
    if not 1 <= int(u) <= int(max_epochs):
        raise TrailsError(f"the first-rung epochs U is {u}, but must be 1 <= U <= max_epochs ({max_epochs})")
