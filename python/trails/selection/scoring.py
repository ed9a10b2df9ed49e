"""The filtering phase of a call: which archs may be scored, and scoring them.

``max_params`` becomes an ``allowed(archs)`` predicate (archs whose MLP is larger are never
scored); :func:`score_candidates` runs :func:`trails.filtering.filter_archs` over the scope the
plan chose, reporting progress and letting a cancel in.
"""

from __future__ import annotations

from collections.abc import Callable

from trails.errors import TrailsError
from trails.filtering import FilteringResult, filter_archs
from trails.model import mlp_parameters, mlp_parameters_of
from trails.selection.planning import FilteringScope
from trails.selection.prepare import Problem
from trails.selection.report import Reporter
from trails.space import arch_text
from trails.tfmem.base import SharedWeightTfmem
from trails.tfmem import get_metric


def vectorised(tfmem: str) -> bool:
    """Whether ``tfmem`` scores many archs at once (SynFlow, ExpressFlow)."""
    return isinstance(get_metric(tfmem), SharedWeightTfmem)


def params_filter(max_params: int | None, problem: Problem, batch_norm: bool, embedding_dim: int):
    """``allowed(archs)`` for :func:`filter_archs`: archs whose MLP has at most ``max_params``
    parameters (:func:`trails.model.mlp_parameters`); None without a bound.

    Raises:
        TrailsError: when not even the space's narrowest arch fits (before any scoring).
    """
    if max_params is None:
        return None
    context = problem.context
    in_features, n_outputs = context.scoring.in_features, problem.task.n_outputs
    narrowest = (min(context.space.widths),) * context.space.layers
    smallest = mlp_parameters(narrowest, in_features, n_outputs, batch_norm)
    if smallest > max_params:
        raise TrailsError(f"no arch of the search space has at most max_params = {max_params} parameters",
                          detail=f"the smallest, {arch_text(narrowest)}, has {smallest} (MLP weights, biases "
                                 f"and BatchNorm; its input is {context.layout.n_fields} fields × "
                                 f"{embedding_dim} = {in_features} numbers)",
                          hint=f"pass max_params >= {smallest}, or NULL for no bound")
    return lambda archs: mlp_parameters_of(archs, in_features, n_outputs, batch_norm) <= max_params


def score_candidates(problem: Problem, scope: FilteringScope, deadline: float | None, tfmem: str, seed: int,
                     allowed, max_params: int | None, interrupt: Callable[[], None],
                     report: Reporter, known: dict | None = None) -> FilteringResult:
    """Rank ``scope.n`` archs of the problem's space with ``tfmem`` (``scope.strategy``) until
    ``deadline`` (``time.monotonic()``, or None). Archs in ``known`` (``{arch: score}``, the
    score cache) keep that score without being scored (:func:`trails.filtering.filter_archs`).

    Raises:
        TrailsError: when no arch is within ``max_params``.
    """
    context = problem.context

    def progress(done: int, total: int, seconds: float) -> None:
        interrupt()
        report.filtering(done, total, seconds)

    scored = filter_archs(context.space, context.scoring, scope.n, tfmem, scope.strategy, seed=seed,
                          deadline=deadline, allowed=allowed, report=progress, known=known)
    if scored.stopped_early:
        report.filtering_stopped(scored.n_scored, scope.n)
    if not scored.ranked:
        raise TrailsError(f"filtering found no arch within max_params = {max_params}",
                          hint="raise max_params, or leave it NULL")
    return scored
