"""The refinement service as a real process on 127.0.0.1, reading a real test database.

Each test starts ``scripts/start_refinement_service.sh`` (foreground) on a free port, with the
test database in the PG* variables and a copy of config.ini with small epochs, and talks to it
through :class:`trails.refinement.client.RefinementClient` and raw HTTP.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2.extensions
import pytest
import torch

import conftest
from trails.data.batches import read_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.session import PgSession
from trails.refinement.client import RefinementClient, ServiceError, ServiceUnavailable
from trails.model import build_model
from trails.refinement.trainer import evaluate_auc
from trails.space import parse_arch
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import TrainingSettings

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "start_refinement_service.sh"
CANDIDATES = ["8-8", "16-16", "32-32"]
# what the jobs here train with: not the service's [refinement] (which it never reads) — the
# width and batch norm differ from the defaults, so a model rebuilt with the defaults fails
JOB_SETTINGS = TrainingSettings(iter_per_epoch=20, embedding_dim=6, batch_norm=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(pg_dsn: str, tmp_path: Path, token: str = "") -> dict:
    path = conftest.write_config(tmp_path / "config.ini",
                                 {"refinement": {"iter_per_epoch": 20}, "service": {"token": token}})
    dsn = psycopg2.extensions.parse_dsn(pg_dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "TRAILS_SERVICE_TOKEN"}
    env.update(PGHOST=dsn["host"], PGPORT=str(dsn["port"]), PGUSER=dsn["user"],
               PGDATABASE=dsn["dbname"], TRAILS_CONFIG=str(path), TRAILS_RUN_DIR=str(tmp_path / "run"))
    return env


class Service:
    """A service process and a client for it."""

    def __init__(self, pg_dsn: str, tmp_path: Path, token: str = ""):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp_path / "service.log").open("w")
        self.process = subprocess.Popen([str(SCRIPT), "--port", str(self.port)],
                                        env=_environment(pg_dsn, tmp_path, token),
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.client = RefinementClient(self.url, token or None, timeout=5)
        deadline = time.monotonic() + 60
        while not self.client.available():
            assert self.process.poll() is None, f"service exited: {self.log_text()}"
            assert time.monotonic() < deadline, f"service did not start: {self.log_text()}"
            time.sleep(0.1)

    def log_text(self) -> str:
        return Path(self.log.name).read_text()

    def wait(self, job_id: str, statuses=("done", "failed", "cancelled"), timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.client.status(job_id)
            if status["status"] in statuses:
                return status
            assert time.monotonic() < deadline, f"job still {status['status']}: {status['message']}"
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def layout(pg2):
    """frappe's layout, stored in trails.layouts of this test's database."""
    session = PgSession(pg2)
    stored = get_or_create_layout(session, resolve_dataset(session, "frappe"), "label")
    pg2.commit()
    return stored


@pytest.fixture
def service(pg_dsn, tmp_path, layout):
    running = Service(pg_dsn, tmp_path)
    yield running
    running.stop()


def _job(layout, setting_changes: dict | None = None, **changes) -> dict:
    job = {"dataset": "frappe", "label": "label", "layout_id": layout.layout_id,
           "candidates": CANDIDATES, "u": 1, "eta": 3, "max_epochs": 3, "deadline_s": 120, "seed": 0,
           "settings": dict(JOB_SETTINGS.to_json(), **(setting_changes or {}))}
    job.update(changes)
    return job


def _http(url: str, method: str = "GET", headers=None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_job_selects_a_model_the_caller_can_load(service, layout, pg2):
    client = service.client
    job_id = client.submit(_job(layout))
    with pytest.raises(ServiceError) as early:
        client.model_state(job_id)
    assert early.value.status == 409 and "once it is done" in str(early.value)

    status = service.wait(job_id)
    assert status["status"] == "done", status
    result, rungs = status["result"], status["rungs"]
    assert [(r["rung"], r["total_epochs"]) for r in rungs] == [(0, 1)] * 3 + [(1, 3)]
    assert sorted(r["arch"] for r in rungs if r["rung"] == 0) == sorted(CANDIDATES)
    best_first = max((r for r in rungs if r["rung"] == 0), key=lambda r: r["valid_score"])
    assert rungs[-1]["arch"] == best_first["arch"]
    assert result["winner"] == max(rungs, key=lambda r: r["valid_score"])["arch"]
    assert 0.5 < result["valid_score"] <= 1.0
    assert result["planned_epochs"] == result["trained_epochs"] == 3 * 1 + 1 * 2
    assert result["deadline_hit"] is False and status["progress"] == 1.0
    assert (result["n_ids"], result["n_fields"]) == (layout.n_ids, layout.n_fields)
    # trained with the job's settings, all of them, and says so
    assert result["settings"] == JOB_SETTINGS.to_json() == status["request"]["settings"]
    assert (result["embedding_dim"], result["batch_norm"]) == (6, False)

    # The weights are the winner's: rebuilt here, they give the reported valid AUC.
    model = build_model(parse_arch(result["winner"]), layout.n_ids, layout.n_fields,
                        result["embedding_dim"], result["batch_norm"], state=client.model_state(job_id))
    session = PgSession(pg2)
    valid = read_encoded(session, resolve_dataset(session, "frappe"), layout, "valid")
    auc = evaluate_auc(model, SplitTensors.from_encoded(valid))
    assert auc == pytest.approx(result["valid_score"], abs=1e-6)

    listed = client.jobs()
    assert [(j["job_id"], j["status"], j["progress"]) for j in listed] == [(job_id, "done", 1.0)]
    health = client.health()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["torch"] == torch.__version__ and health["jobs"]["done"] == 1
    assert (health["executor"], health["workers"], health["devices"]) == ("local", 1, ["cpu"])
    assert health["cached_splits"] == 1

    # Same tables and layout again: the splits come from the cache.
    second = service.wait(client.submit(_job(layout, candidates=["8-8"], max_epochs=1)))
    assert second["status"] == "done" and client.health()["cached_splits"] == 1
    assert "from the cache" in service.log_text()


def test_cancel_stops_a_running_job_and_a_queued_one(service, layout):
    client = service.client
    long_job = _job(layout, {"iter_per_epoch": 200}, candidates=["256-256-256", "128-128-128"], u=9,
                    max_epochs=27, deadline_s=None)
    running = client.submit(long_job)
    queued = client.submit(long_job)
    service.wait(running, statuses=("running",))
    time.sleep(0.3)
    assert client.cancel(queued)["status"] == "cancelled"
    started = time.monotonic()
    client.cancel(running)
    status = service.wait(running, statuses=("done", "failed", "cancelled"), timeout=2)
    assert status["status"] == "cancelled" and time.monotonic() - started < 2
    assert client.status(queued)["status"] == "cancelled"
    assert client.health()["jobs"]["cancelled"] == 2


def test_a_job_with_a_wrong_layout_fails_with_a_message(service, layout):
    status = service.wait(service.client.submit(_job(layout, layout_id=layout.layout_id + 1000)))
    assert status["status"] == "failed"
    assert f"layout {layout.layout_id + 1000} not found" in status["error"]["message"]
    wrong_label = service.wait(service.client.submit(_job(layout, label="user")))
    assert wrong_label["status"] == "failed"
    assert "with label 'label'" in wrong_label["error"]["message"]


BAD_JOBS = [
    ({"candidates": ["8-x"]}, "candidates: cannot read arch '8-x'"),
    ({"candidates": []}, "candidates: List should have at least 1 item"),
    ({"candidates": ["8-0"]}, "arch '8-0' must have 1 to 64 widths, each 1 to 65536"),
    ({"eta": 1}, "eta: Input should be greater than or equal to 2"),
    ({"u": 5}, "u is 5, but must be u <= max_epochs (3)"),
    ({"deadline_s": -1}, "deadline_s: Input should be greater than 0"),
    ({"layout_id": None}, "layout_id: Input should be a valid integer"),
    ({"dataset": ""}, "dataset: String should have at least 1 character"),
    ({"epochs": 3}, "epochs: Extra inputs are not permitted"),
    ({"settings": None}, "settings: Input should be a valid dictionary"),
    ({"batch_size": 64}, "batch_size: Extra inputs are not permitted"),  # a setting goes in settings
    ({"settings": {"batch_size": 64}}, "settings.iter_per_epoch: Field required"),
    ({"settings": dict(JOB_SETTINGS.to_json(), embedding_dim=0)},
     "settings.embedding_dim: Input should be greater than or equal to 1"),
    ({"settings": dict(JOB_SETTINGS.to_json(), precision="fp16")}, "settings.precision: Input should be 'auto'"),
    ({"settings": dict(JOB_SETTINGS.to_json(), width=3)}, "settings.width: Extra inputs are not permitted"),
]


def test_a_bad_job_is_a_422_with_a_clear_message(service, layout):
    for changes, message in BAD_JOBS:
        with pytest.raises(ServiceError) as caught:
            service.client.submit(_job(layout, **changes))
        assert caught.value.status == 422, changes
        assert message in str(caught.value), (changes, str(caught.value))
    code, body = _http(service.url + "/v1/jobs", "POST", {"Content-Type": "application/json"}, b"{not json")
    assert code == 422 and b"invalid job" in body
    assert service.client.jobs() == []


def test_unknown_job_is_404_and_nothing_listening_is_unavailable(service):
    with pytest.raises(ServiceError) as caught:
        service.client.status("nope")
    assert caught.value.status == 404 and "no job 'nope'" in str(caught.value)
    with pytest.raises(ServiceUnavailable) as unavailable:
        RefinementClient(f"http://127.0.0.1:{_free_port()}", timeout=2).health()
    assert unavailable.value.hint and "start_refinement_service.sh" in unavailable.value.hint


def test_the_service_listens_on_loopback_only(service):
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and int(port, 16) == service.port:  # 0A: LISTEN
            listening.add(address)
    assert listening == {"0100007F"}  # 127.0.0.1, little-endian hex
    assert not any(int(line.split()[1].split(":")[1], 16) == service.port
                   for line in Path("/proc/net/tcp6").read_text().splitlines()[1:])


def test_a_token_guards_every_endpoint_but_healthz(pg_dsn, tmp_path):
    service = Service(pg_dsn, tmp_path, token="s3cret")
    try:
        assert _http(service.url + "/healthz")[0] == 200
        for method, path in [("GET", "/v1/jobs"), ("GET", "/v1/jobs/x"), ("DELETE", "/v1/jobs/x"),
                             ("GET", "/v1/jobs/x/model"), ("POST", "/v1/jobs")]:
            code, body = _http(service.url + path, method, body=b"{}" if method == "POST" else None)
            assert code == 401 and b"bearer token" in body, (method, path, code, body)
            wrong = _http(service.url + path, method, {"Authorization": "Bearer nope"})
            assert wrong[0] == 401
        assert service.client.jobs() == []  # the client sends the token
        with pytest.raises(ServiceError) as caught:
            RefinementClient(service.url).jobs()
        assert caught.value.status == 401 and "token" in caught.value.hint
    finally:
        service.stop()


def test_start_script_background_and_stop(pg_dsn, tmp_path):
    env = _environment(pg_dsn, tmp_path)
    port = _free_port()
    started = subprocess.run([str(SCRIPT), "--background", "--port", str(port)], env=env,
                             capture_output=True, text=True, timeout=90)
    assert started.returncode == 0, started.stderr
    assert f"running at http://127.0.0.1:{port}" in started.stdout
    pid_file = tmp_path / "run" / "refinement_service.pid"
    pid = int(pid_file.read_text())
    try:
        assert RefinementClient(f"http://127.0.0.1:{port}").health()["status"] == "ok"
        again = subprocess.run([str(SCRIPT), "--background", "--port", str(port)], env=env,
                               capture_output=True, text=True, timeout=30)
        assert "already running" in again.stdout
    finally:
        stopped = subprocess.run([str(SCRIPT), "--stop"], env=env, capture_output=True, text=True,
                                 timeout=30)
    assert "stopped" in stopped.stdout and not pid_file.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (tmp_path / "run" / "refinement_service.log").read_text().count("Uvicorn running") == 1
