"""The filtering phase: one batch of rows + a search strategy + a TFMEM → archs ranked by score.

Shared by the in-database path (rows through SPI) and the out-of-database twin (psycopg2):
they differ only in the :class:`~trails.data.session.Session` they pass in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trails.config import load_config
from trails.data.batches import read_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout import Layout
from trails.data.layout_store import get_or_create_layout
from trails.data.session import Session
from trails.errors import TrailsError
from trails.search import STRATEGIES, search
from trails.space import Arch, SearchSpace
from trails.tfmem import TfmemBatch, get_metric, metric_names, score_archs


@dataclass
class FilteringResult:
    """All scored archs, best first, and where the time went (seconds)."""

    ranked: list  # [(arch tuple, score float)], descending score
    space: SearchSpace
    layout: Layout
    read_s: float
    score_s: float
    timings: dict = field(default_factory=dict)

    @property
    def n_scored(self) -> int:
        return len(self.ranked)

    def top(self, k: int) -> list:
        return self.ranked[:k]


def validate_filtering_arguments(n, k, tfmem, strategy) -> None:
    """Raise :class:`TrailsError` for any invalid argument of a filtering call."""
    if n is None or n <= 0:
        raise TrailsError(f"n must be a positive integer, got {n}", hint="pass n > 0 archs to score")
    if k is not None and (k <= 0 or k > n):
        raise TrailsError(f"k must be between 1 and n = {n}, got {k}",
                          hint="k archs are kept out of the n scored: 1 ≤ k ≤ n")
    if tfmem not in metric_names():
        raise TrailsError(f"unknown TFMEM '{tfmem}'", hint="valid: " + ", ".join(metric_names()))
    if strategy not in STRATEGIES:
        raise TrailsError(f"unknown search strategy '{strategy}'", hint="valid: " + ", ".join(STRATEGIES))


def space_for(layout: Layout) -> SearchSpace:
    """The configured search space; the large-width one for criteo-sized train splits."""
    config = load_config()
    return SearchSpace.from_config(config, large=layout.train_rows >= config.getint("space", "large_rows"))


def read_tfmem_batch(session: Session, dataset, layout: Layout, rows: int) -> TfmemBatch:
    """The first ``rows`` train rows as a :class:`TfmemBatch` (embedding dim from config)."""
    encoded = read_encoded(session, dataset, layout, "train", limit=rows)
    if len(encoded) == 0:
        raise TrailsError(f"the train split of \"{dataset.name}\" has no labelled row",
                          hint="load rows with a non-NULL label")
    return TfmemBatch.from_numpy(encoded.ids, encoded.values, encoded.labels, n_ids=layout.n_ids,
                                 embedding_dim=load_config().getint("refinement", "embedding_dim"))


class FilteringDeadline(Exception):
    """The filtering deadline passed: rank what was scored so far."""


class ProgressScorer:
    """``score_fn`` for :func:`trails.search.search` that scores in chunks of about a tenth of
    ``n`` and calls ``report(done, n, seconds)`` after each tenth."""

    def __init__(self, metric: str, in_features: int, batch: TfmemBatch | None, seed: int, n: int,
                 report: Callable[[int, int, float], None] | None, deadline: float | None = None):
        self.metric, self.in_features, self.batch, self.seed = metric, in_features, batch, seed
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
            scores.append(score_archs(self.metric, part, self.in_features, self.seed, self.batch))
            self.scored.extend(zip(part, scores[-1].tolist()))
            self.done += len(part)
            if self.report and self.done >= self.next_report:
                self.report(self.done, self.n, time.perf_counter() - self.started)
                while self.next_report <= self.done:
                    self.next_report += self.chunk
        return np.concatenate(scores) if scores else np.empty(0)


def run_filtering(session: Session, dataset: str, n: int, k: int | None = None,
                  tfmem: str = "express_flow", strategy: str = "evolution", label: str = "label",
                  seed: int | None = None, batch_size: int | None = None,
                  report: Callable[[int, int, float], None] | None = None,
                  deadline: float | None = None) -> FilteringResult:
    """Score ``n`` archs of ``dataset``'s search space and rank them (best first).

    Reads one batch of ``batch_size`` train rows (``[tfmem] batch_size``) when the TFMEM is
    data-dependent; data-agnostic TFMEMs only need the layout's field count. With a
    ``deadline`` (a ``time.monotonic()`` value), scoring stops at the first chunk boundary
    after it and the archs scored so far are ranked.
    Raises :class:`TrailsError` for invalid arguments or an unusable dataset.
    """
    validate_filtering_arguments(n, k, tfmem, strategy)
    config = load_config()
    seed = config.getint("tfmem", "seed") if seed is None else seed
    batch_size = batch_size or config.getint("tfmem", "batch_size")
    if batch_size <= 0:
        raise TrailsError(f"batch_size must be a positive integer, got {batch_size}", hint="e.g. 32")

    started = time.perf_counter()
    resolved = resolve_dataset(session, dataset)
    layout = get_or_create_layout(session, resolved, label)
    space = space_for(layout)
    in_features = layout.n_fields * config.getint("refinement", "embedding_dim")
    batch = None
    if not get_metric(tfmem).data_agnostic:
        batch = read_tfmem_batch(session, resolved, layout, batch_size)
    read_s = time.perf_counter() - started

    started = time.perf_counter()
    scorer = ProgressScorer(tfmem, in_features, batch, seed, min(n, space.size), report, deadline)
    try:
        scored = search(space, n, scorer, strategy=strategy, seed=seed,
                        population=config.getint("search", "population"),
                        sample=config.getint("search", "sample"),
                        round_size=config.getint("search", "round_size"))
    except FilteringDeadline:
        scored = scorer.scored
    score_s = time.perf_counter() - started
    ranked = sorted(((arch, float(score)) for arch, score in scored), key=lambda p: -p[1])
    return FilteringResult(ranked, space, layout, read_s, score_s)


def profile_scoring(session: Session, dataset: str, tfmem: str = "express_flow",
                    label: str = "label", archs: int | None = None, seed: int = 0) -> float:
    """t1: seconds to score one arch of ``dataset``'s space with ``tfmem`` (random archs,
    after one warm-up call; 2,000 archs for vectorised TFMEMs, 20 for the others)."""
    if tfmem not in metric_names():
        raise TrailsError(f"unknown TFMEM '{tfmem}'", hint="valid: " + ", ".join(metric_names()))
    config = load_config()
    resolved = resolve_dataset(session, dataset)
    layout = get_or_create_layout(session, resolved, label)
    space = space_for(layout)
    metric = get_metric(tfmem)
    archs = archs or (2000 if metric.data_agnostic else 20)
    batch = None if metric.data_agnostic else read_tfmem_batch(
        session, resolved, layout, config.getint("tfmem", "batch_size"))
    in_features = layout.n_fields * config.getint("refinement", "embedding_dim")
    rng = np.random.default_rng(seed)
    sample = [space.sample(rng) for _ in range(archs)]
    score_archs(tfmem, sample[:2], in_features, seed, batch)  # warm-up (imports, caches)
    started = time.perf_counter()
    score_archs(tfmem, sample, in_features, seed, batch)
    return (time.perf_counter() - started) / archs
