"""One call, one context: the dataset is resolved once per call, and filtering is a pure
function of the resolved inputs (no database needed)."""

import numpy as np
import pytest

from trails.context import resolve_context
from trails.data.session import PgSession
from trails.errors import TrailsError
from trails.filtering import filter_archs, profile_scoring
from trails.selection import run_model_selection
from trails.space import SearchSpace
from trails.tfmem import ScoringInputs, TfmemBatch


class CountingSession(PgSession):
    """A psycopg2 session that records every statement it runs."""

    def __init__(self, connection):
        super().__init__(connection)
        self.statements = []

    def query(self, sql, args=(), types=()):
        self.statements.append(sql)
        return super().query(sql, args, types)

    def chunks(self, sql, chunk_rows):
        self.statements.append(sql)
        return super().chunks(sql, chunk_rows)

    def count(self, *parts) -> int:
        return sum(all(part in statement for part in parts) for statement in self.statements)


def test_one_model_selection_call_resolves_its_dataset_once(pg2):
    session = CountingSession(pg2)
    row = run_model_selection(session, "criteo", 10, "label", "nas_wot", "backend", seed=0)
    assert row["model_id"] is not None
    # resolve_dataset looks up criteo_train, criteo_valid and criteo_test once each ...
    assert session.count("to_regclass") == 3
    # ... the splits are counted once ...
    assert sum(statement.startswith("SELECT count(*) AS n FROM") and "criteo_train" in statement
               for statement in session.statements) == 1
    # ... and nas_wot's batch of 32 rows is read once (t1, the t2 probe and filtering share it)
    assert session.count("LIMIT 32") == 1
    assert session.count("trails.layouts") >= 1  # the layout, looked up (and stored) once
    assert session.count("SELECT layout_id, layout FROM trails.layouts") <= 2


def test_resolve_context_reads_the_batch_only_for_data_dependent_metrics(pg2):
    session = CountingSession(pg2)
    agnostic = resolve_context(session, "frappe", "label", "express_flow")
    assert agnostic.scoring.batch is None and session.count("LIMIT 32") == 0
    dependent = resolve_context(session, "frappe", "label", "snip", batch_rows=16)
    assert dependent.scoring.batch.rows == 16 and session.count("LIMIT 16") == 1
    assert dependent.rows == {"train": 202_027, "valid": 57_722, "test": 28_860}
    assert dependent.scoring.in_features == dependent.layout.n_fields * 10
    assert dependent.space.size == 20 ** 4


def _batch(rows=32, fields=5, n_ids=40, seed=0):
    rng = np.random.default_rng(seed)
    return TfmemBatch.from_numpy(rng.integers(0, n_ids, (rows, fields)), np.ones((rows, fields)),
                                 np.arange(rows) % 2, n_ids=n_ids, embedding_dim=10)


@pytest.mark.parametrize("metric, strategy", [("express_flow", "evolution"), ("synflow", "random"),
                                              ("nas_wot", "random")])
def test_filtering_is_a_pure_function_of_its_inputs(metric, strategy):
    space = SearchSpace(3, (8, 16, 32, 64))
    inputs = ScoringInputs(50, _batch())
    first = filter_archs(space, inputs, 30, metric, strategy, seed=4)
    again = filter_archs(space, inputs, 30, metric, strategy, seed=4)
    other = filter_archs(space, inputs, 30, metric, strategy, seed=5)
    assert first.n_scored == 30 and not first.stopped_early
    assert [arch for arch, _ in first.ranked] == [arch for arch, _ in again.ranked]
    np.testing.assert_allclose([s for _, s in first.ranked], [s for _, s in again.ranked], rtol=1e-9)
    assert first.ranked != other.ranked  # another seed: other archs or other weights
    scores = [score for _, score in first.ranked]
    assert scores == sorted(scores, reverse=True)
    assert profile_scoring(space, inputs, metric, archs=4) > 0


def test_a_data_dependent_metric_without_a_batch_is_an_error():
    with pytest.raises(TrailsError, match="data-dependent"):
        filter_archs(SearchSpace(2, (8, 16)), ScoringInputs(50), 4, "nas_wot")
    with pytest.raises(TrailsError, match="input features"):
        ScoringInputs(60, _batch())
    with pytest.raises(TrailsError, match="seed must be"):
        filter_archs(SearchSpace(2, (8, 16)), ScoringInputs(50), 4, seed=-1)
