"""Search strategies of the filtering phase: which archs to score, given a budget of ``n`` scores.

``score_fn`` takes a list of archs and returns their scores (higher is better) in one call, so a
vectorised TFMEM scores a whole batch at once; every strategy asks for scores in as few calls as
its logic allows.

* ``random``: n distinct uniformly random archs, one call.
* ``exhaustive``: the first n archs of :meth:`SearchSpace.enumerate` (all of them when
  n ≥ size), in calls of ``EXHAUSTIVE_CHUNK``. Used automatically whenever n ≥ space size.
* ``evolution``: regularized (aging) evolution, Real et al. 2019, "Regularized evolution for image
  classifier architecture search", batched in rounds — see :func:`_evolution`.

Every strategy scores distinct archs only and returns all n scored (arch, score) pairs in
scoring order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from trails.errors import TrailsError
from trails.space import Arch, SearchSpace

STRATEGIES = ("evolution", "random", "exhaustive")
EXHAUSTIVE_CHUNK = 16384
_MUTATION_ATTEMPTS = 32
_RANDOM_ATTEMPTS = 64

ScoreFn = Callable[[list[Arch]], Sequence[float]]


def search(
    space: SearchSpace,
    n: int,
    score_fn: ScoreFn,
    strategy: str = "evolution",
    seed: int = 0,
    population: int = 10,
    sample: int = 3,
    round_size: int | None = None,
) -> list[tuple[Arch, float]]:
    """Score ``n`` distinct archs of ``space`` chosen by ``strategy``.

    Args:
        space: the search space.
        n: archs to score (≥ 1); when n ≥ space.size every arch is scored once (exhaustive).
        score_fn: list of archs → their scores (a sequence of floats of the same length).
        strategy: "evolution", "random" or "exhaustive".
        seed: seeds every random choice.
        population: evolution's population size (P in the paper), ≥ 1.
        sample: evolution's tournament size (S in the paper), 1 ≤ sample ≤ population.
        round_size: children per scoring call in evolution; default ``population``.

    Returns:
        ``min(n, space.size)`` pairs ``(arch, score)``, archs distinct, in scoring order.

    Raises:
        TrailsError (a ValueError): n ≤ 0, an unknown strategy (the message names the valid ones),
        population < 1, sample outside 1..population, round_size < 1, or a score_fn that returns
        the wrong number of scores.
    """
    _validate(n, strategy, population, sample, round_size)
    if strategy == "exhaustive" or n >= space.size:
        return _exhaustive(space, min(int(n), space.size), score_fn)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        archs = _distinct_random_archs(space, int(n), rng)
        return list(zip(archs, _scores(score_fn, archs)))
    return _evolution(space, int(n), score_fn, rng, population, sample, round_size or population)


def _validate(n, strategy, population, sample, round_size) -> None:
    if strategy not in STRATEGIES:
        raise TrailsError(f"unknown search strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if int(n) < 1:
        raise TrailsError(f"the number of archs to score must be >= 1, got {n}")
    if int(population) < 1:
        raise TrailsError(f"population must be >= 1, got {population}")
    if not 1 <= int(sample) <= int(population):
        raise TrailsError(f"sample must lie in 1..population ({population}), got {sample}")
    if round_size is not None and int(round_size) < 1:
        raise TrailsError(f"round_size must be >= 1, got {round_size}")


def _scores(score_fn: ScoreFn, archs: list[Arch]) -> list[float]:
    scores = [float(score) for score in score_fn(archs)]
    if len(scores) != len(archs):
        raise TrailsError(f"the scoring function returned {len(scores)} scores for {len(archs)} archs")
    return scores


def _exhaustive(space: SearchSpace, n: int, score_fn: ScoreFn) -> list[tuple[Arch, float]]:
    """The first n archs in enumeration order (lexicographic, which keeps shared prefixes
    together for the vectorised TFMEMs), scored in chunks."""
    results: list[tuple[Arch, float]] = []
    chunk: list[Arch] = []
    for arch in space.enumerate():
        if len(results) + len(chunk) == n:
            break
        chunk.append(arch)
        if len(chunk) == EXHAUSTIVE_CHUNK:
            results.extend(zip(chunk, _scores(score_fn, chunk)))
            chunk = []
    if chunk:
        results.extend(zip(chunk, _scores(score_fn, chunk)))
    return results


def _distinct_random_archs(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Arch]:
    """n distinct archs drawn uniformly without replacement (n ≤ space.size)."""
    return [space.arch_at(int(index)) for index in rng.choice(space.size, size=n, replace=False)]


def _evolution(space: SearchSpace, n: int, score_fn: ScoreFn, rng: np.random.Generator,
               population_size: int, sample: int, round_size: int) -> list[tuple[Arch, float]]:
    """Regularized evolution, batched in rounds.

    The first ``population_size`` archs are distinct random ones, scored in one call. Then each
    round proposes ``round_size`` children: each child is a mutation (one layer, new width) of
    the winner of a tournament — ``sample`` members drawn without replacement from the population,
    best score wins — and all tournaments of a round read the population as it stood when the
    round began. The round is scored in one call; then the children join the population one by
    one in proposal order, each pushing out the *oldest* member (aging), never the worst.

    With ``round_size = 1`` this is exactly Real et al.'s algorithm. A round of r behaves like r
    asynchronous workers reading the same population, which is how Real et al. ran it (hundreds
    of workers for a population of 100); aging and tournament selection are unchanged.

    A child already scored (or already proposed in this round) is re-drawn: up to
    _MUTATION_ATTEMPTS mutations of the same parent, then a random unscored arch.
    """
    seen: set[Arch] = set()
    initial = _distinct_random_archs(space, min(population_size, n), rng)
    seen.update(initial)
    results = list(zip(initial, _scores(score_fn, initial)))
    population = deque(results, maxlen=population_size)
    while len(results) < n:
        snapshot = list(population)
        children: list[Arch] = []
        for _ in range(min(round_size, n - len(results))):
            parent = _tournament_winner(snapshot, sample, rng)
            child = _unseen_mutation(space, parent, rng, seen)
            seen.add(child)
            children.append(child)
        scored = list(zip(children, _scores(score_fn, children)))
        results.extend(scored)
        population.extend(scored)  # deque(maxlen) drops the oldest on each append
    return results


def _tournament_winner(population: list[tuple[Arch, float]], sample: int, rng: np.random.Generator) -> Arch:
    picks = rng.choice(len(population), size=min(sample, len(population)), replace=False)
    best = max(picks, key=lambda pick: population[pick][1])
    return population[best][0]


def _unseen_mutation(space: SearchSpace, parent: Arch, rng: np.random.Generator, seen: set[Arch]) -> Arch:
    for _ in range(_MUTATION_ATTEMPTS):
        child = space.mutate(parent, rng)
        if child not in seen:
            return child
    return _unseen_random(space, rng, seen)


def _unseen_random(space: SearchSpace, rng: np.random.Generator, seen: set[Arch]) -> Arch:
    """A random arch not in ``seen`` (the caller guarantees one exists)."""
    for _ in range(_RANDOM_ATTEMPTS):
        arch = space.sample(rng)
        if arch not in seen:
            return arch
    start = int(rng.integers(0, space.size))
    for offset in range(space.size):
        arch = space.arch_at((start + offset) % space.size)
        if arch not in seen:
            return arch
    raise TrailsError("every arch of the space has been scored already")
