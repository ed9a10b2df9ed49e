"""The refinement service reads the caller's data only, refuses to be exposed without a token,
and its failures leave a call that finishes in the backend (refinement => 'auto') or errors
cleanly (refinement => 'service'): real processes on 127.0.0.1, a real cluster.

Faults: the service killed (-9) mid-job, stopped (SIGSTOP: it accepts connections and never
answers), its reading connection terminated by PostgreSQL, four calls at once through one
service. After each: the call returns or errors within budget + 5 s, writes a run only when it
returns, leaves no job running, and the service (when alive) serves the next call. A cancel
through the service is in test_model_selection.py.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg
import pytest

import conftest
from trails.refinement.trainer import TrainingSettings

BUDGET = 15.0
SLACK = 5.0


def _start_service(pg_dsn, *args):
    info = dict(part.split("=", 1) for part in pg_dsn.split())
    env = dict(os.environ, PGHOST=info["host"], PGPORT=info["port"], PGUSER=info["user"],
               PGDATABASE="postgres")  # jobs name their database: the DSN's does not matter
    process = subprocess.Popen([sys.executable, "-m", "trails.refinement.service", "--host", "127.0.0.1",
                                "--port", str(conftest.SERVICE_PORT), *args],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{conftest.SERVICE_PORT}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            return process, url
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"service exited: {process.stderr.read()}")
            time.sleep(0.2)
    raise RuntimeError("service did not start")


@pytest.fixture
def service(pg_dsn):
    """(process, url) of a refinement service on 127.0.0.1; stopped (or reaped) afterwards."""
    process, url = _start_service(pg_dsn)
    yield process, url
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
    process.wait(timeout=10)


def _synthetic(sql, name="synth", rows=30000, flip=False):
    label = "1 - " if flip else ""
    sql(f"CREATE TABLE {name} AS SELECT i AS id, i % 7 AS a, chr(65 + i % 5) AS b,"
        f" {label}(CASE WHEN (i % 7) + (i % 5) > 5 THEN 1 ELSE 0 END) AS label"
        f" FROM generate_series(1, {rows}) AS i")


def _call(dsn, query, notices=None):
    """(row or error, seconds) of one call on its own connection."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        if notices is not None:
            connection.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        started = time.monotonic()
        try:
            row = connection.execute(query).fetchone()
        except psycopg.Error as error:
            return error, time.monotonic() - started
        seconds = time.monotonic() - started
        # the run's row is visible after the statement: where did the model train?
        return row + connection.execute("SELECT refinement FROM trails.runs WHERE run_id = %s",
                                        (row[0],)).fetchone(), seconds


def _in_background(dsn, query):
    outcome = {"notices": []}
    thread = threading.Thread(target=lambda: outcome.update(
        zip(("result", "seconds"), _call(dsn, query, outcome["notices"]))))
    thread.start()
    return thread, outcome


def _wait_for_job(url, status="running", timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=2).read())
        if jobs and jobs[-1]["status"] == status:
            return jobs[-1]
        time.sleep(0.2)
    raise AssertionError(f"no job reached {status!r}")


QUERY = "SELECT run_id FROM model_selection('synth', {budget}, refinement => '{mode}')"


def test_refuses_to_bind_beyond_loopback_without_a_token(pg_dsn):
    result = subprocess.run([sys.executable, "-m", "trails.refinement.service", "--host", "0.0.0.0",
                             "--port", str(conftest.SERVICE_PORT)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, TRAILS_SERVICE_TOKEN=""))
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0 without a token" in result.stderr


def test_trains_on_the_callers_database(sql, pg_dsn, service):
    """Two databases, a table of the same name with opposite labels: the model is the caller's."""
    _synthetic(sql, "twin", rows=6000)
    dbname = dict(part.split("=", 1) for part in pg_dsn.split())["dbname"]
    other = f"{dbname}_other"
    sql(f"CREATE DATABASE {other}")
    other_dsn = pg_dsn.replace(f"dbname={dbname}", f"dbname={other}")
    try:
        with psycopg.connect(other_dsn, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION trails CASCADE")
            connection.execute("CREATE SCHEMA data")
            connection.execute("SET search_path = data, public")
            _synthetic(lambda q: connection.execute(q), "twin", rows=6000, flip=True)
            connection.execute("ALTER DATABASE " + other + " SET search_path = data, public")
        query = "SELECT run_id, test_auc FROM model_selection('twin', NULL, max_trials => 2, refinement => 'service')"
        (_, test_auc, mode), _ = _call(other_dsn, query)
        assert mode == "service" and test_auc > 0.9  # the other database's labels, in its schema
        (_, test_auc, mode), _ = _call(pg_dsn, query)
        assert mode == "service" and test_auc > 0.9  # and this one's here
    finally:
        sql(f"DROP DATABASE {other} WITH (FORCE)")


def test_a_job_reads_only_what_its_role_may_read(sql, service):
    from trails.refinement.client import RefinementClient

    _synthetic(sql, rows=3000)
    sql("CREATE ROLE trails_reader")
    sql("REVOKE ALL ON synth FROM PUBLIC")
    oid, name, database = sql("SELECT 'synth'::regclass::oid::bigint, 'public.synth', current_database()")[0]
    sql("SELECT count(*) FROM trails.describe('synth')")  # stores the layout the job names
    layout_id = sql("SELECT max(layout_id) FROM trails.layouts")[0][0]
    client = RefinementClient(service[1])
    job = {"dataset": "synth", "label": "label", "layout_id": layout_id, "database": database,
           "role": "trails_reader", "tables": {s: name for s in ("train", "valid", "test")},
           "oids": {s: oid for s in ("train", "valid", "test")},
           "split_bounds": {"train": [0, 70], "valid": [70, 90], "test": [90, 100]},
           "candidates": ["8-8-8-8"], "u": 1, "max_epochs": 1, "settings": TrainingSettings().to_json()}
    status = client.wait(client.submit(job))
    assert status["status"] == "failed"
    assert 'role "trails_reader" may not read public.synth' in status["error"]["message"]
    # trails.jobs(): a role sees its own jobs only, a superuser every job
    assert len(sql("SELECT * FROM trails.jobs()")) == 1
    sql("GRANT USAGE ON SCHEMA trails TO trails_reader")
    sql("SET ROLE trails_reader")
    assert [row[0] for row in sql("SELECT job_id FROM trails.jobs()")] == [status["job_id"]]
    sql("RESET ROLE")
    sql("CREATE ROLE trails_other")
    sql("GRANT USAGE ON SCHEMA trails TO trails_other")
    sql("SET ROLE trails_other")
    assert sql("SELECT * FROM trails.jobs()") == []
    sql("RESET ROLE")


def _check_fallback(outcome, sql, budget=BUDGET):
    row, seconds = outcome["result"], outcome["seconds"]
    assert not isinstance(row, Exception), row
    assert row[1] == "backend" and seconds <= budget + SLACK, (row, seconds)
    assert any("the refinement service failed" in n for n in outcome["notices"]), outcome["notices"]
    assert sql("SELECT count(*) FROM trails.runs")[0][0] == 1


def test_service_killed_mid_job(sql, pg_dsn, service):
    _synthetic(sql)
    process, url = service
    thread, outcome = _in_background(pg_dsn, QUERY.format(budget=BUDGET, mode="auto"))
    _wait_for_job(url)
    process.kill()
    thread.join(timeout=BUDGET + 30)
    _check_fallback(outcome, sql)


def test_service_killed_mid_job_in_service_mode_is_an_error(sql, pg_dsn, service):
    _synthetic(sql)
    process, url = service
    thread, outcome = _in_background(pg_dsn, QUERY.format(budget=BUDGET, mode="service"))
    _wait_for_job(url)
    process.kill()
    thread.join(timeout=BUDGET + 30)
    assert isinstance(outcome["result"], psycopg.Error), outcome
    assert "stopped answering" in outcome["result"].diag.message_primary
    assert outcome["seconds"] <= BUDGET + SLACK
    assert sql("SELECT (SELECT count(*) FROM trails.runs), (SELECT count(*) FROM trails.models)")[0] == (0, 0)


def test_service_that_stops_answering(sql, pg_dsn, service):
    _synthetic(sql)
    process, url = service
    thread, outcome = _in_background(pg_dsn, QUERY.format(budget=BUDGET, mode="auto"))
    _wait_for_job(url)
    os.kill(process.pid, signal.SIGSTOP)  # the port stays open: connections hang
    try:
        thread.join(timeout=BUDGET + 30)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    _check_fallback(outcome, sql)
    # once it answers again, the abandoned job is not left training
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        jobs = json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=2).read())
        if all(job["status"] in ("done", "failed", "cancelled") for job in jobs):
            break
        time.sleep(0.5)
    assert all(job["status"] in ("done", "failed", "cancelled") for job in jobs), jobs


def test_database_drops_the_services_connection_while_it_reads(sql, pg_dsn, service):
    _synthetic(sql, rows=200000)
    process, url = service
    thread, outcome = _in_background(pg_dsn, QUERY.format(budget=30, mode="auto"))
    _wait_for_job(url, status="loading")
    terminated = sql("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                     " WHERE application_name = 'trails refinement service'")[0][0]
    thread.join(timeout=60)
    if terminated:
        _check_fallback(outcome, sql, budget=30)
    else:  # the read finished before the terminate landed: the call went through the service
        assert outcome["result"][1] == "service"
    row, _ = _call(pg_dsn, QUERY.format(budget=BUDGET, mode="service"))  # healthy for the next call
    assert not isinstance(row, Exception) and row[1] == "service", row


def test_four_calls_at_once_through_one_service(sql, pg_dsn, service):
    """The service trains one job at a time: the others give up waiting in its queue after a
    few seconds and train in their backends (auto). Four fresh backends on two cores spend a
    while importing and profiling: a budget refused as too small is a clean outcome too."""
    _synthetic(sql, rows=6000)
    process, url = service
    budget = 60
    calls = [_in_background(pg_dsn, QUERY.format(budget=budget, mode="auto")) for _ in range(4)]
    for thread, _ in calls:
        thread.join(timeout=budget + 60)
    modes = []
    for _, outcome in calls:
        row, seconds = outcome["result"], outcome["seconds"]
        assert seconds <= budget + SLACK, (seconds, row, outcome["notices"])
        if isinstance(row, Exception):
            assert row.diag.sqlstate == "22023" and "too small" in row.diag.message_primary, row
        else:
            modes.append(row[1])
    assert sql("SELECT count(*) FROM trails.runs")[0][0] == len(modes) >= 1
    assert process.poll() is None
    row, _ = _call(pg_dsn, QUERY.format(budget=BUDGET, mode="service"))
    assert not isinstance(row, Exception) and row[1] == "service", row


def test_a_table_too_large_is_refused_before_it_is_read(sql, pg_dsn, tmp_path):
    from trails.errors import TrailsError
    from trails.refinement.data import require_fits

    _synthetic(sql, rows=60000)  # 42,000 train + 12,000 valid rows × 2 fields: ~1.6 MiB of tensors
    config = conftest.write_config(tmp_path / "small.ini", {"service": {"max_table_mb": 1,
                                                                        "port": conftest.SERVICE_PORT}})
    os.chmod(tmp_path, 0o755)
    process, _ = _start_service(pg_dsn, "--config", str(config))
    try:
        error, seconds = _call(pg_dsn, QUERY.format(budget=BUDGET, mode="service"))
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert isinstance(error, psycopg.Error), error
    assert "too large to train on here" in error.diag.message_primary
    assert "[service] max_table_mb = 1" in error.diag.message_primary and seconds <= BUDGET + SLACK
    with pytest.raises(TrailsError, match=r"\[refinement\] max_table_mb = 2048"):
        require_fits("big", 200_000_000, 10, 2048, "[refinement] max_table_mb")


def test_streaming_start_trains_while_the_train_split_is_read(sql, pg_dsn):
    """--stream-train: the job trains on the first chunk while the rest is read; the model is
    fine, the whole split ends up read and cached (the next job starts from the cache)."""
    process, url = _start_service(pg_dsn, "--stream-train")
    try:
        _synthetic(sql, rows=60000)  # 42,000 train rows: five chunks of [data] chunk_rows
        results = []
        for _ in range(2):
            row, seconds = _call(pg_dsn, "SELECT run_id, test_auc FROM model_selection('synth', 15, "
                                         "refinement => 'service')")
            assert not isinstance(row, Exception), row
            assert row[1] > 0.9 and row[2] == "service" and seconds < 15 + SLACK
            job_id = json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=5).read())[-1]["job_id"]
            results.append(json.loads(urllib.request.urlopen(f"{url}/v1/jobs/{job_id}", timeout=5).read())["result"])
        first, second = results
        assert first["train_rows"] == second["train_rows"] and 38000 < first["train_rows"] < 46000  # ~70 %
        assert 1 <= first["train_rows_at_start"] <= first["train_rows"]
        assert second["train_rows_at_start"] == second["train_rows"]  # from the cache: all of it
        assert first["training_started_after_s"] >= 0
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_job_reads_the_rows_its_role_may_see(sql, service):
    """Row-level security: the service reads as the caller (SET LOCAL ROLE), so a policy that
    hides half the rows from the role hides them from its job too."""
    from trails.refinement.client import RefinementClient

    _synthetic(sql, rows=6000)
    sql("CREATE ROLE trails_half")
    sql("GRANT USAGE ON SCHEMA trails TO trails_half")
    sql("GRANT SELECT ON synth TO trails_half")
    sql("ALTER TABLE synth ENABLE ROW LEVEL SECURITY")
    sql("CREATE POLICY even_ids ON synth FOR SELECT TO trails_half USING (id % 2 = 0)")
    oid, name, database, superuser = sql("SELECT 'synth'::regclass::oid::bigint, 'public.synth', "
                                         "current_database(), current_user")[0]
    sql("SELECT count(*) FROM trails.describe('synth')")  # stores the layout the job names
    layout_id, layout = sql("SELECT layout_id, layout FROM trails.layouts ORDER BY layout_id DESC LIMIT 1")[0]
    client = RefinementClient(service[1])

    def train_rows(role):
        job = {"dataset": "synth", "label": "label", "layout_id": layout_id, "layout": layout, "database": database,
               "role": role, "tables": {s: name for s in ("train", "valid", "test")},
               "oids": {s: oid for s in ("train", "valid", "test")},
               "split_bounds": {"train": [0, 70], "valid": [70, 90], "test": [90, 100]},
               "candidates": ["8-8-8-8"], "u": 1, "max_epochs": 1,
               "settings": TrainingSettings().to_json()}
        status = client.wait(client.submit(job))
        assert status["status"] == "done", status
        return status["result"]["train_rows"]

    everything, half = train_rows(superuser), train_rows("trails_half")
    assert 0.35 * everything < half < 0.65 * everything


def test_postgresql_restarts_while_the_service_reads(sql, pg_dsn, service, trails_server):
    """The cluster restarts (pg_ctl restart -m fast) while the service reads the job's rows: the
    call errors cleanly (its session is gone), nothing is written, the job fails instead of
    training on, and once PostgreSQL is back the service serves the next call. Runs last in
    this file: the test's own `sql` connection does not survive the restart."""
    process, url = service
    _synthetic(sql, rows=600000)  # a read of seconds
    thread, outcome = _in_background(pg_dsn, QUERY.format(budget=30, mode="service"))
    _wait_for_job(url, "loading", timeout=60)
    trails_server.restart()
    thread.join(timeout=30)
    assert isinstance(outcome["result"], psycopg.OperationalError), outcome
    deadline = time.monotonic() + 10
    while json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=2).read())[-1]["status"] in ("loading", "running"):
        assert time.monotonic() < deadline, "the job kept going after PostgreSQL restarted"
        time.sleep(0.2)
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM trails.runs").fetchone()[0] == 0
        connection.execute("DELETE FROM synth WHERE id > 30000")
    row, seconds = _call(pg_dsn, QUERY.format(budget=BUDGET, mode="service"))
    assert not isinstance(row, Exception), row
    assert row[1] == "service" and seconds <= BUDGET + SLACK
