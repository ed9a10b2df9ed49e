"""The Ray executor: successive halving's rungs trained on Ray workers, and the refinement
service on a Ray cluster.

A Ray head is started for this module as its own process on 127.0.0.1 (``ray start --head
--block``; every Ray process binds loopback: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). The
executor's tests connect this process to it; the service's tests start a refinement service
with ``--executor ray --ray-address`` the head and run ``model_selection`` through it.
"""

import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# read when ray is imported, and inherited by the head and the service started below: every
# Ray process binds 127.0.0.1, and the cluster requires this run's token
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
import ray  # noqa: E402
import torch  # noqa: E402

import conftest
from test_halving import CANDIDATES, N_FIELDS, N_IDS, SETTINGS, synthetic
from test_service_faults import _call, _in_background, _start_service, _synthetic, _wait_for_job
from trails.errors import TrailsError
from trails.families import Candidate, get_family
from trails.families.gbdt import portfolio
from trails.refinement.halving import Cancelled, successive_halving
from trails.refinement.schedule import halving_rungs
from trails.refinement.trainer import TrainingSettings

RAY_ENV = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")


def _ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def ray_head():
    """The GCS address ("127.0.0.1:port") of a Ray head, stopped afterwards. It claims 4 CPUs
    (the machine may have 2) so that the executor's 2 workers and a service's 2 fit at once;
    the tests run one at a time."""
    port = conftest._free_port()
    process = subprocess.Popen([_ray_command(), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                                "--port", str(port), "--num-cpus", "4", "--num-gpus", "0",
                                "--include-dashboard", "false", "--disable-usage-stats"],
                               env=RAY_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start failed: {process.stderr.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        raise RuntimeError("the Ray head did not start within 90 s")
    yield address
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    subprocess.run([_ray_command(), "stop", "--force"], env=RAY_ENV, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def executor(ray_head):
    """A RayExecutor of 2 workers of 1 CPU on the head; closed (workers freed) afterwards."""
    from trails.refinement.ray_executor import RayExecutor

    executor = RayExecutor(ray_head, workers=2, cpus_per_worker=1)
    yield executor
    executor.close()
    ray.shutdown()


@pytest.fixture(scope="module")
def splits():
    return synthetic(4000, 1), synthetic(1000, 2)


def _run(splits, **kwargs):
    train_data, valid_data = splits
    options = dict(u=3, eta=3, max_epochs=9, settings=SETTINGS, seed=0, device="cpu")
    options.update(kwargs)
    return successive_halving(CANDIDATES, train_data, valid_data, N_IDS, N_FIELDS, **options)


def test_workers_start_on_the_head(executor, ray_head):
    assert executor.describe() == {"executor": "ray", "ray_address": ray_head, "workers": 2,
                                   "devices": ["cpu (1 threads)", "cpu (1 threads)"]}


def test_rungs_on_ray_are_the_schedule_and_continue_across_workers(executor, splits):
    """The same rungs and epochs as the local executor; a survivor continues (its epochs add
    up) whichever worker trains its next rung."""
    result = _run(splits, executor=executor)
    schedule = halving_rungs(len(CANDIDATES), 3, 3, 9)
    assert [tuple(rung) for rung in result.schedule] == [tuple(rung) for rung in schedule]
    for index, rung in enumerate(schedule):
        evaluated = [r for r in result.rungs if r.rung == index]
        assert len(evaluated) == rung.n_models
        assert all(r.total_epochs == rung.total_epochs for r in evaluated)
        # each rung trains only the epochs a survivor lacks: 3 new ones after rung 0
        assert all(len(r.train_losses) == rung.total_epochs - (schedule[index - 1].total_epochs if index else 0)
                   for r in evaluated)
    assert result.trained_epochs == result.planned_epochs
    assert result.device == "cpu" and not result.deadline_hit
    # promotion: rung i+1's candidates are the best of rung i
    first = sorted((r for r in result.rungs if r.rung == 0), key=lambda r: -r.valid_score)
    assert {r.candidate for r in result.rungs if r.rung == 1} == {r.candidate for r in first[:schedule[1].n_models]}
    assert result.winner.config in CANDIDATES and result.valid_score > 0.8
    # the winner's weights came back from a worker and score as reported
    from trails.refinement.trainer import evaluate
    assert abs(evaluate(result.model(), splits[1], result.task) - result.valid_score) < 1e-6


def test_a_candidate_continues_on_another_worker_as_it_would_have_here(executor, splits):
    """Ray and the local executor give the same evaluations and model: the state shipped between
    rungs to whichever worker is free (weights, Adam, schedule, generator) is complete."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic in both
    try:
        local = _run(splits, u=1, max_epochs=3, eta=3)
    finally:
        torch.set_num_threads(threads)
    remote = _run(splits, u=1, max_epochs=3, eta=3, executor=executor)
    # the same evaluations (a rung's results arrive in the order the workers finish them)
    local_scores = {(r.candidate, r.rung, r.total_epochs): r.valid_score for r in local.rungs}
    remote_scores = {(r.candidate, r.rung, r.total_epochs): r.valid_score for r in remote.rungs}
    assert local_scores.keys() == remote_scores.keys()
    assert all(abs(local_scores[key] - remote_scores[key]) < 1e-5 for key in local_scores)
    assert remote.winner == local.winner
    assert all(torch.allclose(local.state_dict[name], remote.state_dict[name], atol=1e-5)
               for name in local.state_dict)


def test_trees_and_mlps_race_on_ray_workers(executor, splits):
    """A race of both families on the workers: a trees candidate's booster travels between rungs
    as its model string and continues on whichever worker is free; the winner's model comes back
    and scores as reported, whatever its family."""
    candidates = [Candidate("mlp", CANDIDATES[3]), Candidate("gbdt", portfolio(1)[0]),
                  Candidate("mlp", CANDIDATES[5]), Candidate("gbdt", portfolio(2)[1])]
    settings = dataclasses.replace(SETTINGS, rounds_per_unit=5)
    result = successive_halving(candidates, *splits, N_IDS, N_FIELDS, u=1, eta=2, max_epochs=4, settings=settings,
                                seed=0, device="cpu", executor=executor)
    assert [r.candidate for r in result.rungs if r.rung == 0] == candidates
    assert {r.candidate.family for r in result.rungs if r.rung == 0} == {"mlp", "gbdt"}
    assert result.trained_epochs == result.planned_epochs and not result.failures
    family = get_family(result.winner.family)
    assert abs(family.evaluate(result.model(), splits[1], result.task, 4096) - result.valid_score) < 1e-6


def test_deadline_and_finishing_phase_on_ray(executor, splits):
    deadline = time.monotonic() + 4.0
    result = _run(splits, u=1, max_epochs=27, executor=executor, deadline=deadline, finish=True)
    assert time.monotonic() < deadline + 2.0
    assert result.rungs and result.winner.config in CANDIDATES
    assert result.rungs[-1].final or result.deadline_hit


def test_cancel_stops_the_workers(executor, splits):
    stop, stopped_at = threading.Event(), []

    def cancel_at_the_first_evaluation(progress):  # the race has most of its work ahead, at any CPU speed
        if progress.result is not None and not stop.is_set():
            stopped_at.append(time.monotonic())
            stop.set()

    with pytest.raises(Cancelled):
        _run(splits, u=9, max_epochs=27, executor=executor, should_stop=stop.is_set,
             progress=cancel_at_the_first_evaluation, settings=TrainingSettings(batch_size=64, iter_per_epoch=200))
    assert stopped_at and time.monotonic() - stopped_at[0] < 4.0
    # the workers are free for the next run
    assert _run(splits, u=1, max_epochs=1, executor=executor).trained_epochs == len(CANDIDATES)


def test_a_workers_error_is_raised_as_itself(executor, splits):
    train_data, valid_data = splits
    constant = type(valid_data)(valid_data.ids, valid_data.values, torch.zeros_like(valid_data.labels))
    with pytest.raises(TrailsError, match="needs at least two classes"):
        successive_halving(CANDIDATES[:2], train_data, constant, N_IDS, N_FIELDS, 1, 3, 1,
                           settings=SETTINGS, device="cpu", executor=executor)


@pytest.fixture
def ray_service(pg_dsn, ray_head):
    """A refinement service whose executor is Ray (the head above, 2 workers)."""
    process, url = _start_service(pg_dsn, "--executor", "ray", "--ray-address", ray_head, "--ray-workers", "2")
    yield process, url
    process.terminate()
    process.wait(timeout=30)


def test_model_selection_through_a_service_on_ray(sql, pg_dsn, ray_service):
    process, url = ray_service
    health = json.loads(urllib.request.urlopen(url + "/healthz", timeout=5).read())
    assert health["executor"] == "ray" and health["workers"] == 2
    assert health["devices"] == ["cpu (1 threads)", "cpu (1 threads)"]
    _synthetic(sql, rows=20000)
    row, seconds = _call(pg_dsn, "SELECT run_id, test_auc, k_refined FROM model_selection('synth', 20, "
                                 "refinement => 'service')")
    assert not isinstance(row, Exception), row
    run_id, test_auc, k_refined, refinement = row
    assert refinement == "service" and test_auc > 0.9 and seconds < 20 + 5
    jobs = json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=5).read())
    job = json.loads(urllib.request.urlopen(f"{url}/v1/jobs/{jobs[-1]['job_id']}", timeout=5).read())
    assert job["status"] == "done"
    assert job["result"]["executor"] == "ray" and job["result"]["workers"] == 2
    entered = {rung["arch"] for rung in job["rungs"] if rung["rung"] == 0 and not rung["final"]}
    assert len(entered) == k_refined >= 2
    # the time a finished winner leaves trains reserves and variations from scratch: final only
    assert all(rung["final"] for rung in job["rungs"] if rung["arch"] not in entered)
    assert {rung["family"] for rung in job["rungs"] if rung["rung"] == 0} == {"mlp", "gbdt"}  # families => 'auto'


def test_a_ray_worker_killed_mid_job(sql, pg_dsn, ray_service):
    """kill -9 of the Ray workers while they train: the job ends (failed, or given up by the
    call), refinement => 'auto' finishes the call in the backend within budget + 5 s, and Ray's
    restarted workers serve the next call."""
    process, url = ray_service
    _synthetic(sql, rows=60000)
    budget = 20
    thread, outcome = _in_background(pg_dsn, f"SELECT run_id FROM model_selection('synth', {budget})")
    _wait_for_job(url, "running", timeout=60)
    time.sleep(1.0)
    # every worker (the busy one among them, whichever it is); Ray restarts them
    workers = subprocess.run(["pgrep", "-f", "ray::RungWorker"], capture_output=True, text=True).stdout.split()
    assert workers, "no Ray worker process found"
    for pid in workers:
        os.kill(int(pid), signal.SIGKILL)
    thread.join(timeout=budget + 30)
    row = outcome["result"]
    assert not isinstance(row, Exception), row
    assert row[1] == "backend" and outcome["seconds"] < budget + 5
    assert any("refinement service failed" in notice for notice in outcome["notices"])
    # the job failed ("a Ray worker died ..."), or the call gave it up and cancelled it while
    # its task waited for the restarted worker: either way it is not left training
    ended = json.loads(urllib.request.urlopen(url + "/v1/jobs", timeout=5).read())[-1]
    assert ended["status"] == "cancelled" or (ended["status"] == "failed" and "Ray worker" in ended["message"]), ended
    row, seconds = _call(pg_dsn, "SELECT run_id FROM model_selection('synth', 15, refinement => 'service')")
    assert not isinstance(row, Exception), row
    assert row[1] == "service"
