"""model_selection end to end, in psql terms: through the service and in the backend,
cancellation, a missing service, predict, and nothing left behind by a failure."""

import threading
import time

import numpy as np
import psycopg2
import pytest
from sklearn.metrics import roc_auc_score

import conftest
from trails.families import parse_candidate
from trails.families.mlp_config import arch_and_recipe

BUDGET = 20.0


def _selection(sql, mode, budget=BUDGET, dataset="frappe"):
    started = time.monotonic()
    row = sql("SELECT run_id, best_arch, valid_auc, test_auc, n_scored, k_refined, u, elapsed_s,"
              " model_id FROM model_selection(%s, %s, refinement => %s)", dataset, budget, mode)[0]
    return row, time.monotonic() - started


@pytest.fixture
def refinement_service(pg_dsn):
    """The refinement service as a real process on 127.0.0.1, reading this test's database."""
    with conftest.refinement_service_process(pg_dsn) as url:
        yield url


def _check_row(row, seconds, budget=BUDGET):
    run_id, best_arch, valid_auc, test_auc, n_scored, k_refined, u, elapsed_s, model_id = row
    candidate = parse_candidate(best_arch)  # an MLP of the space's 4 layers, or trees (families => 'auto')
    assert candidate.family == "gbdt" or len(arch_and_recipe(candidate.config)[0]) == 4
    assert 0.8 < valid_auc <= 1 and 0.8 < test_auc <= 1  # frappe is learnable in seconds
    assert n_scored >= k_refined >= 1
    assert elapsed_s <= budget * 1.05 + 2 and seconds <= budget * 1.05 + 3


def test_in_backend_refinement_and_predict_round_trip(sql):
    row, seconds = _selection(sql, "backend")
    _check_row(row, seconds)
    run_id, model_id, test_auc = row[0], row[8], row[3]
    stored = sql("SELECT refinement, k_refined, phases ? 'filtering_s', status FROM trails.runs"
                 " WHERE run_id = %s", run_id)[0]
    assert stored == ("backend", row[5], True, "done")
    assert sql("SELECT count(*) FROM trails.models WHERE model_id = %s AND run_id = %s",
               model_id, run_id)[0][0] == 1

    scores = sql("SELECT t.label, p.score FROM trails.predict_table(%s, 'frappe_test') p"
                 " JOIN frappe_test t USING (id)", model_id)
    labels, probabilities = np.array([s[0] for s in scores]), np.array([s[1] for s in scores])
    assert len(scores) == 28_860
    # float32 forward passes in other batch sizes may move a near-tied pair (one pair: 5e-9)
    assert roc_auc_score(labels, probabilities) == pytest.approx(test_auc, abs=1e-5)
    single = sql("SELECT trails.predict(%s, t), p.score FROM frappe_test t JOIN"
                 " trails.predict_table(%s, 'frappe_test') p USING (id) ORDER BY id LIMIT 20",
                 model_id, model_id)
    # one row (a batch of 1) vs batches of 10,000: float32 kernels round differently (~3e-7)
    assert all(a == pytest.approx(b, abs=1e-5) for a, b in single)


def test_through_the_service(sql, refinement_service):
    row, seconds = _selection(sql, "service")
    _check_row(row, seconds)
    assert sql("SELECT refinement FROM trails.runs WHERE run_id = %s", row[0])[0][0] == "service"
    jobs = sql("SELECT job_id, status, winner FROM trails.jobs()")
    assert jobs and jobs[-1][1] == "done" and jobs[-1][2] == row[1]


def test_missing_service_with_service_mode_is_an_error(pg2):
    with pytest.raises(psycopg2.Error) as caught:
        with pg2.cursor() as cursor:
            cursor.execute("SELECT * FROM model_selection('frappe', 20, refinement => 'service')")
    pg2.rollback()
    diag = caught.value.diag
    assert "refinement => 'service'" in diag.message_primary and "not reachable" in diag.message_primary
    assert "start_refinement_service.sh" in diag.message_hint
    with pg2.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM trails.runs), (SELECT count(*) FROM trails.models)")
        assert cursor.fetchone() == (0, 0)


def test_cancel_stops_within_two_seconds_and_leaves_nothing(pg_dsn, pg2):
    worker = psycopg2.connect(pg_dsn)
    pid = worker.get_backend_pid()
    outcome = {}

    def run():
        try:
            with worker.cursor() as cursor:
                cursor.execute("SELECT * FROM model_selection('frappe', 120, refinement => 'backend')")
        except psycopg2.Error as error:
            outcome["error"] = error
            outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(12)  # well into refinement
    cancelled_at = time.monotonic()
    with pg2.cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", (pid,))
    pg2.commit()
    thread.join(timeout=30)
    worker.close()
    assert isinstance(outcome.get("error"), psycopg2.errors.QueryCanceled)
    assert outcome["at"] - cancelled_at < 2.0
    with pg2.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM trails.runs), (SELECT count(*) FROM trails.models)")
        assert cursor.fetchone() == (0, 0)


@pytest.mark.parametrize("query, message", [
    ("SELECT * FROM model_selection('frappe', 0)", "budget_s must be a positive, finite number"),
    ("SELECT * FROM model_selection('frappe', 1)", "too small"),
    ("SELECT * FROM model_selection('frappe', 30, tfmem => 'magic')", "unknown TFMEM 'magic'"),
    ("SELECT * FROM model_selection('frappe', 30, refinement => 'gpu')", "unknown refinement mode 'gpu'"),
    ("SELECT * FROM model_selection('nope', 30)", 'dataset "nope" not found'),
    ("SELECT trails.predict(12345, t) FROM frappe_test t LIMIT 1", "model 12345 not found"),
])
def test_bad_arguments_leave_no_rows(pg2, query, message):
    with pytest.raises(psycopg2.Error) as caught:
        with pg2.cursor() as cursor:
            cursor.execute(query)
    pg2.rollback()
    assert message in caught.value.diag.message_primary and caught.value.diag.message_hint
    with pg2.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM trails.runs), (SELECT count(*) FROM trails.models)")
        assert cursor.fetchone() == (0, 0)


def test_plan_shows_what_a_call_would_do(sql):
    t1, t2, n, k, u, rungs, total_s = sql(
        "SELECT t1, t2, n, k, u, rungs, total_s FROM model_selection_plan('frappe', 60)")[0]
    # express_flow scores frappe's whole space; K and U are the plan after its revision
    assert t1 > 0 and t2 > 0 and n == 160_000 and 1 <= k <= 100 and total_s <= 60.01
    assert ("models to" in rungs) if k > 1 else rungs == "filtering only"
