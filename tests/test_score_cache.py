"""The TFMEM score cache: filtering with known scores ranks as a cold run and scores only the
archs the cache lacks; the signature keys everything a score depends on; scores round-trip
through ``trails.tfmem_scores`` (the ``db`` test: it needs the extension installed)."""

import math

import numpy as np
import pytest

import trails.filtering
from trails.data.session import PgSession
from trails.filtering import SearchSettings, filter_archs
from trails.selection import score_cache
from trails.space import SearchSpace
from trails.tfmem import ScoringInputs, TfmemBatch

SPACE = SearchSpace(3, (8, 16, 32, 64))  # 64 archs
INPUTS = ScoringInputs(30, None, 2)
SETTINGS = SearchSettings(5, 2, 4)


class CountingScorer:
    """Wraps :func:`trails.filtering.score_archs`, recording every arch it is asked to score."""

    def __init__(self, monkeypatch):
        self.archs = []
        self.real = trails.filtering.score_archs
        monkeypatch.setattr(trails.filtering, "score_archs", self)

    def __call__(self, metric, archs, *args):
        self.archs.extend(tuple(arch) for arch in archs)
        return self.real(metric, archs, *args)


def _filter(known=None, metric="express_flow", allowed=None):
    return filter_archs(SPACE, INPUTS, 30, metric, "evolution", seed=2, settings=SETTINGS,
                        allowed=allowed, known=known)


@pytest.mark.parametrize("metric", ["express_flow", "synflow"])
def test_known_scores_of_a_cold_run_rank_identically_without_scoring(monkeypatch, metric):
    cold = _filter(metric=metric)
    assert cold.reused == 0 and cold.new_scores == dict(cold.ranked)
    counter = CountingScorer(monkeypatch)
    warm = _filter(known=cold.new_scores, metric=metric)
    assert counter.archs == []
    assert warm.ranked == cold.ranked and warm.reused == 30 and warm.new_scores == {}


def test_partly_known_scores_only_the_missing_archs(monkeypatch):
    cold = _filter()
    known = dict(cold.ranked[::2])
    counter = CountingScorer(monkeypatch)
    warm = _filter(known=known)
    assert sorted(counter.archs) == sorted(arch for arch, _ in cold.ranked[1::2])
    assert warm.reused == len(known) and sorted(warm.new_scores) == sorted(counter.archs)
    # a vectorised TFMEM's score may move in the last bits with the archs scored beside it
    assert [arch for arch, _ in warm.ranked] == [arch for arch, _ in cold.ranked]
    np.testing.assert_allclose([score for _, score in warm.ranked], [score for _, score in cold.ranked], rtol=1e-12)


def test_known_archs_that_allowed_rejects_are_neither_scored_nor_ranked(monkeypatch):
    allowed = lambda archs: archs.max(axis=1) <= 32  # noqa: E731
    cold = _filter(allowed=allowed)
    rejected = {arch: 1e9 for arch in SPACE.enumerate() if max(arch) > 32}  # cached under no bound
    counter = CountingScorer(monkeypatch)
    warm = _filter(known={**cold.new_scores, **rejected}, allowed=allowed)
    assert counter.archs == [] and warm.ranked == cold.ranked
    assert all(max(arch) <= 32 for arch, _ in warm.ranked)
    assert warm.reused == len(warm.ranked) < 30  # the rejected ones were proposed, not reused


def test_new_scores_leave_out_scores_that_are_not_finite(monkeypatch):
    monkeypatch.setattr(trails.filtering, "score_archs",
                        lambda metric, archs, *args: np.array([math.nan if arch[0] == 8 else 1.0 for arch in archs]))
    result = _filter()
    assert result.new_scores and all(arch[0] != 8 and score == 1.0 for arch, score in result.new_scores.items())


def _batch(labels=(0, 1, 0, 1)):
    rows = len(labels)
    return TfmemBatch.from_numpy(np.arange(rows * 3).reshape(rows, 3) % 7, np.ones((rows, 3)), labels,
                                 n_ids=7, embedding_dim=10)


def test_the_signature_changes_with_what_a_score_depends_on():
    base = score_cache.signature("express_flow", 0, SPACE, INPUTS)
    assert len(base) == 32 and int(base, 16) >= 0
    assert base == score_cache.signature("express_flow", 0, SearchSpace(3, (8, 16, 32, 64)), ScoringInputs(30, None, 2))
    others = [score_cache.signature("express_flow", 1, SPACE, INPUTS),
              score_cache.signature("synflow", 0, SPACE, INPUTS),
              score_cache.signature("express_flow", 0, SPACE, ScoringInputs(40, None, 2)),
              score_cache.signature("express_flow", 0, SPACE, ScoringInputs(30, None, 3)),
              score_cache.signature("express_flow", 0, SearchSpace(3, (8, 16, 32)), INPUTS),
              score_cache.signature("express_flow", 0, SearchSpace(2, (8, 16, 32, 64)), INPUTS)]
    assert len({base, *others}) == 1 + len(others)


def test_only_a_data_dependent_signature_reads_the_batch():
    agnostic = score_cache.signature("express_flow", 0, SPACE, INPUTS)
    assert agnostic == score_cache.signature("express_flow", 0, SPACE, ScoringInputs(30, _batch(), 2))
    dependent = score_cache.signature("nas_wot", 0, SPACE, ScoringInputs(30, _batch(), 2))
    assert dependent == score_cache.signature("nas_wot", 0, SPACE, ScoringInputs(30, _batch(), 2))
    assert dependent != score_cache.signature("nas_wot", 0, SPACE, ScoringInputs(30, _batch((1, 1, 0, 1)), 2))
    with pytest.raises(score_cache.TrailsError, match="data-dependent"):
        score_cache.signature("nas_wot", 0, SPACE, INPUTS)


def test_db_scores_round_trip_through_the_table(pg2):
    session = PgSession(pg2)
    sig = score_cache.signature("express_flow", 0, SPACE, INPUTS)
    assert score_cache.load(session, sig) == {}
    cold = _filter()
    score_cache.save(session, sig, "express_flow", 0, {**cold.new_scores, (512, 512, 512): -math.inf})
    assert score_cache.load(session, sig) == cold.new_scores  # bit for bit, without the -inf
    merged = {**cold.new_scores, (512, 512, 512): 1.5}
    score_cache.save(session, sig, "express_flow", 0, merged)
    assert score_cache.load(session, sig) == merged
    with pg2.cursor() as cursor:
        cursor.execute("SELECT count(*), min(tfmem), min(seed) FROM trails.tfmem_scores")
        assert cursor.fetchone() == (1, "express_flow", 0)
    assert score_cache.load(session, "another signature") == {}
