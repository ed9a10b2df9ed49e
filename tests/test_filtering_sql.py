"""The filtering phase through SQL: filtering_phase, coordinator, profiling, benchmark."""

import psycopg2
import pytest

from trails.context import resolve_context
from trails.coordinator import schedule
from trails.data.session import PgSession
from trails.filtering import filter_archs
from trails.space import SearchSpace
from trails.tfmem import metric_names


def test_filtering_phase_returns_k_ranked_archs_with_progress(sql, postgresql):
    notices = []
    postgresql.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    rows = sql("SELECT rank, arch, score FROM filtering_phase('frappe', 5000, 50)")
    assert [r[0] for r in rows] == list(range(1, 51))
    scores = [r[2] for r in rows]
    assert scores == sorted(scores, reverse=True) and len({r[1] for r in rows}) == 50
    space = SearchSpace()
    assert all(space.decode(r[1]) for r in rows)  # valid "w1-w2-w3-w4" archs of the space
    progress = [n for n in notices if "archs scored" in n and "archs/s" in n]
    assert len(progress) >= 9 and "5000/5000" in progress[-1]


def test_in_db_and_out_of_db_paths_agree(sql, pg2):
    """Same code, same seed: SPI and psycopg2 produce the same ranking on a data-dependent TFMEM."""
    in_db = sql("SELECT arch, score FROM filtering_phase('frappe', 40, 10, 'nas_wot', 'random')")
    context = resolve_context(PgSession(pg2), "frappe", "label", "nas_wot")
    out = filter_archs(context.space, context.scoring, 40, "nas_wot", "random")
    space = out.space
    assert [(space.encode(a), pytest.approx(s, rel=1e-9)) for a, s in out.top(10)] == \
        [(a, s) for a, s in in_db]


@pytest.mark.parametrize("tfmem", sorted(set(metric_names()) - {"express_flow"}))
def test_every_tfmem_runs_in_the_database(sql, tfmem):
    rows = sql("SELECT rank, arch, score FROM filtering_phase('uci_diabetes', 6, 3, %s, 'random')", tfmem)
    assert len(rows) == 3 and all(r[2] == r[2] for r in rows)  # three finite, ranked scores
    assert rows[0][2] >= rows[1][2] >= rows[2][2]


def test_exhaustive_when_n_covers_the_space(sql):
    rows = sql("SELECT count(*) FROM filtering_phase('criteo', 200000, 160000)")
    assert rows[0][0] == 160_000  # every arch of the 20^4 space, once


def test_coordinator_matches_python_schedule(sql):
    n, k, u = sql("SELECT * FROM coordinator(60, 0.0002, 1.5)")[0]
    plan = schedule(60, 0.0002, 1.5)
    assert (n, k, u) == (plan.n, plan.k, plan.u) and n == 100 * k
    assert sql("SELECT * FROM coordinator(0.5, 0.001, 100)")[0][1:] == (1, 0)  # filtering only


def test_profiling_and_benchmark_functions(sql):
    t1 = sql("SELECT profiling_filtering_phase('frappe')")[0][0]
    assert 0 < t1 < 0.01
    read_s, score_s, total_s, rate = sql(
        "SELECT * FROM benchmark_filtering_latency_in_db(1000, 'frappe')")[0]
    assert read_s > 0 and score_s > 0 and total_s >= read_s + score_s * 0.99
    assert rate == pytest.approx(1000 / total_s)


@pytest.mark.parametrize("query, message, hint_part", [
    ("SELECT * FROM filtering_phase('frappe', 0, 1)", "n must be a positive integer", "n > 0"),
    ("SELECT * FROM filtering_phase('frappe', 10, 20)", "k must be between 1 and n = 10", "1 ≤ k ≤ n"),
    ("SELECT * FROM filtering_phase('frappe', 10, 2, 'magic')", "unknown TFMEM 'magic'", "express_flow"),
    ("SELECT * FROM filtering_phase('frappe', 10, 2, 'synflow', 'greedy')",
     "unknown search strategy 'greedy'", "evolution, random, exhaustive"),
    ("SELECT * FROM filtering_phase('nope', 10, 2)", 'dataset "nope" not found', "frappe"),
    ("SELECT * FROM coordinator(-1, 0.1, 0.1)", "budget_s must be a positive, finite number", "t1 ="),
    ("SELECT profiling_filtering_phase('frappe', 'magic')", "unknown TFMEM 'magic'", "synflow"),
])
def test_bad_arguments(pg2, query, message, hint_part):
    with pytest.raises(psycopg2.Error) as caught:
        with pg2.cursor() as cursor:
            cursor.execute(query)
    pg2.rollback()
    diag = caught.value.diag
    assert message in diag.message_primary and hint_part in (diag.message_hint or "")


def test_filtering_stops_at_its_deadline_and_ranks_what_it_scored(pg2):
    import time

    context = resolve_context(PgSession(pg2), "frappe", "label")
    result = filter_archs(context.space, context.scoring, 5000, deadline=time.monotonic())
    assert 1 <= result.n_scored < 5000 and result.stopped_early  # the first chunk is always scored
    assert len(result.top(10)) == min(10, result.n_scored)
    assert [s for _, s in result.ranked] == sorted((s for _, s in result.ranked), reverse=True)
