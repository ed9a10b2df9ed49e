"""The filtering phase: a search strategy + a TFMEM over a search space → archs ranked by score.

A pure function of (space, scoring inputs, n, metric, strategy, seed, deadline): no database
access. The rows it may need (the batch of a data-dependent TFMEM) arrive in the
:class:`~trails.tfmem.ScoringInputs`, read once by :func:`trails.context.resolve_context` —
through SPI in the database, through psycopg2 out of it; the scoring is the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trails.config import load_config
from trails.errors import TrailsError, require_seed, sql_text
from trails.search import STRATEGIES, search
from trails.space import Arch, SearchSpace
from trails.tfmem import ScoringInputs, get_metric, metric_names, score_archs

ReportFn = Callable[[int, int, float], None]  # (archs scored, archs planned, seconds so far)


@dataclass(frozen=True)
class SearchSettings:
    """Regularized evolution's settings (``[search]``): population P, tournament size S, and
    children scored per vectorised call."""

    population: int = 10
    sample: int = 3
    round_size: int = 100

    @classmethod
    def from_config(cls, config=None) -> "SearchSettings":
        config = config or load_config()
        return cls(config.getint("search", "population"), config.getint("search", "sample"),
                   config.getint("search", "round_size"))


@dataclass
class FilteringResult:
    """All scored archs, best first, and the seconds scoring took.

    Attributes:
        ranked: ``[(arch, score)]`` by descending score (ties keep scoring order).
        space: the space they were drawn from.
        score_s: seconds spent choosing and scoring archs.
        stopped_early: the deadline stopped scoring before ``n`` archs.
        reused: archs whose score came from ``known`` (the score cache) instead of the TFMEM.
        new_scores: ``{arch: score}`` of the archs the TFMEM scored in this call (finite
            scores only): what the score cache lacks.
    """

    ranked: list
    space: SearchSpace
    score_s: float
    stopped_early: bool = False
    reused: int = 0
    new_scores: dict = field(default_factory=dict)

    @property
    def n_scored(self) -> int:
        return len(self.ranked)

    def top(self, k: int) -> list:
        """The ``k`` best ``(arch, score)`` pairs."""
        return self.ranked[:k]


def validate_filtering_arguments(n, k, tfmem, strategy, seed=0) -> None:
    """Raise :class:`TrailsError` for any invalid argument of a filtering call."""
    require_seed(seed)
    if n is None or n <= 0:
        raise TrailsError(f"n must be a positive integer, got {sql_text(n)}", hint="pass n > 0 archs to score")
    if k is not None and (k <= 0 or k > n):
        raise TrailsError(f"k must be between 1 and n = {n}, got {sql_text(k)}",
                          hint="k archs are kept out of the n scored: 1 ≤ k ≤ n")
    if tfmem not in metric_names():
        raise TrailsError(f"unknown TFMEM {sql_text(tfmem)}", hint="valid: " + ", ".join(metric_names()))
    if strategy not in STRATEGIES:
        raise TrailsError(f"unknown search strategy {sql_text(strategy)}", hint="valid: " + ", ".join(STRATEGIES))


class FilteringDeadline(Exception):
    """The filtering deadline passed: rank what was scored so far."""


class ProgressScorer:
    """``score_fn`` for :func:`trails.search.search` that scores in chunks of about a tenth of
    ``n``, calls ``report(done, n, seconds)`` after each tenth and stops at the deadline.

    Archs in ``known`` (``{arch: score}``, e.g. :func:`trails.selection.score_cache.load`) take
    that score instead of being scored; the others that are scored are kept in ``new_scores``.
    """

    def __init__(self, metric: str, inputs: ScoringInputs, seed: int, n: int,
                 report: ReportFn | None, deadline: float | None = None, allowed=None,
                 known: dict | None = None):
        self.metric, self.inputs, self.seed, self.allowed = metric, inputs, seed, allowed
        self.known = known or {}
        self.reused, self.new_scores = 0, {}  # archs taken from known; {arch: finite score} scored here
        self.n, self.report, self.deadline = n, report, deadline
        self.chunk = max(1, n // 10)
        self.done, self.next_report = 0, self.chunk
        self.started = time.perf_counter()
        self.scored: list = []  # every (arch, score), kept for a stop at the deadline

    def __call__(self, archs: list[Arch]) -> np.ndarray:
        scores = []
        for start in range(0, len(archs), self.chunk):
            if self.deadline is not None and time.monotonic() >= self.deadline and self.scored:
                raise FilteringDeadline(len(self.scored))
            part = archs[start:start + self.chunk]
            scores.append(self._score(part))
            self.scored.extend(zip(part, scores[-1].tolist()))
            self.done += len(part)
            if self.report and self.done >= self.next_report:
                self.report(self.done, self.n, time.perf_counter() - self.started)
                while self.next_report <= self.done:
                    self.next_report += self.chunk
        return np.concatenate(scores) if scores else np.empty(0)

    def _score(self, part: list[Arch]) -> np.ndarray:
        """Scores of ``part``; archs ``allowed`` rejects get -inf without being scored, archs in
        ``known`` get their known score without being scored."""
        keep = np.ones(len(part), dtype=bool) if self.allowed is None else \
            np.asarray(self.allowed(np.array(part, dtype=np.int64)), dtype=bool)
        scores = np.full(len(part), -np.inf)
        fresh = []  # positions in part of the archs to score
        for position, arch in enumerate(part):
            if not keep[position]:
                continue
            if arch in self.known:
                scores[position] = self.known[arch]
                self.reused += 1
            else:
                fresh.append(position)
        if fresh:
            chosen = [part[position] for position in fresh]
            scores[fresh] = score_archs(self.metric, chosen, self.inputs.in_features, self.seed,
                                        self.inputs.batch, self.inputs.n_outputs)
            self.new_scores.update((arch, float(score)) for arch, score in zip(chosen, scores[fresh])
                                   if np.isfinite(score))
        return scores


def filter_archs(space: SearchSpace, inputs: ScoringInputs, n: int, metric: str = "express_flow",
                 strategy: str = "evolution", seed: int = 0, deadline: float | None = None,
                 report: ReportFn | None = None,
                 settings: SearchSettings | None = None, allowed=None,
                 known: dict | None = None) -> FilteringResult:
    """Score ``n`` archs of ``space`` chosen by ``strategy`` with ``metric`` and rank them.

    Args:
        space: the search space.
        inputs: the MLP's input width and, for a data-dependent metric, the batch of rows.
        n: archs to score (all of the space when n ≥ its size).
        metric: a TFMEM name (:func:`trails.tfmem.metric_names`).
        strategy: ``evolution``, ``random`` or ``exhaustive`` (:mod:`trails.search`).
        seed: seeds the search and the TFMEM's random draws; the same arguments give the same
            ranking.
        deadline: a ``time.monotonic()`` value; scoring stops at the first chunk boundary
            after it and the archs scored so far are ranked.
        report: called as ``report(done, n, seconds)`` after each tenth of ``n``.
        settings: evolution's settings (``[search]`` when None).
        allowed: ``allowed(archs)`` → bool mask over an int64 ``(n, layers)`` array: archs it
            rejects (e.g. over ``max_params``) are never scored and never ranked.
        known: ``{arch: score}`` already computed with the same metric, seed and inputs (the
            score cache, :mod:`trails.selection.score_cache`): those archs are not scored
            again and keep their score in place, so the search makes the choices and the
            ranking of the run that computed them.

    Raises:
        TrailsError: for an invalid argument, or a data-dependent metric without a batch.
    """
    validate_filtering_arguments(n, None, metric, strategy, seed)
    if inputs.batch is None and not get_metric(metric).data_agnostic:
        raise TrailsError(f"TFMEM {metric!r} is data-dependent: it needs a batch of rows",
                          hint="resolve the context with this TFMEM, or use a data-agnostic one")
    settings = settings or SearchSettings.from_config()
    started = time.perf_counter()
    scorer = ProgressScorer(metric, inputs, seed, min(n, space.size), report, deadline, allowed, known)
    stopped_early = False
    try:
        scored = search(space, n, scorer, strategy=strategy, seed=seed, population=settings.population,
                        sample=settings.sample, round_size=settings.round_size)
    except FilteringDeadline:
        scored, stopped_early = scorer.scored, True
    score_s = time.perf_counter() - started
    if allowed is not None and scored:  # archs it rejects were never scored: leave them out
        keep = np.asarray(allowed(np.array([arch for arch, _ in scored], dtype=np.int64)), dtype=bool)
        scored = [pair for pair, kept in zip(scored, keep) if kept]
    ranked = sorted(((arch, float(score)) for arch, score in scored), key=lambda pair: -pair[1])
    return FilteringResult(ranked, space, score_s, stopped_early, scorer.reused, scorer.new_scores)


def profile_scoring(space: SearchSpace, inputs: ScoringInputs, metric: str = "express_flow",
                    archs: int | None = None, seed: int = 0) -> float:
    """t1: seconds to score one arch of ``space`` with ``metric`` (``archs`` random archs —
    default 2,000 for data-agnostic TFMEMs, 20 for the others — after one warm-up call).

    Raises:
        TrailsError: for an unknown metric, or a data-dependent one without a batch.
    """
    if metric not in metric_names():
        raise TrailsError(f"unknown TFMEM {sql_text(metric)}", hint="valid: " + ", ".join(metric_names()))
    data_agnostic = get_metric(metric).data_agnostic
    archs = archs or (2000 if data_agnostic else 20)
    rng = np.random.default_rng(seed)
    sample = [space.sample(rng) for _ in range(archs)]
    score_archs(metric, sample[:2], inputs.in_features, seed, inputs.batch, inputs.n_outputs)  # warm-up
    started = time.perf_counter()
    score_archs(metric, sample, inputs.in_features, seed, inputs.batch, inputs.n_outputs)
    return (time.perf_counter() - started) / archs
