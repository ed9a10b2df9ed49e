"""Talk to the refinement service (:mod:`trails.refinement.service`) over HTTP.

Only the standard library (``urllib``): the client runs inside PostgreSQL backends, where the
extension should not need more than ``plpython3u`` and torch.

Example, in a PL/Python function::

    client = RefinementClient.from_config()
    spec = JobSpec(dataset="frappe", label="label", layout_id=1,
                   candidates=("64-64-64-64", "128-128-128-128"), u=1, eta=3, max_epochs=27,
                   deadline_s=50, seed=0, settings=TrainingSettings.from_config())
    outcome = client.run(spec, sleep=lambda: plpy.execute("SELECT pg_sleep(0.2)"))
    outcome.winner, outcome.valid_score, outcome.weights  # weights: torch.save bytes

(:meth:`RefinementClient.submit`, :meth:`~RefinementClient.wait` and
:meth:`~RefinementClient.model_state` are the steps :meth:`~RefinementClient.run` takes.)
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import quote

from trails.config import load_config
from trails.errors import TrailsError
from trails.refinement.jobs import FINISHED, JobOutcome, JobSpec

__all__ = ["FINISHED", "JobOutcome", "JobSpec", "RefinementClient", "ServiceError", "ServiceFailed",
           "ServiceUnavailable", "job_failure"]

START_HINT = ("start it with scripts/start_refinement_service.sh --background, or pass "
              "refinement => 'backend' to train inside the database")


class ServiceUnavailable(TrailsError):
    """Nothing answers at the service's address (refused, unreachable or timed out)."""


class ServiceFailed(TrailsError):
    """A job the service accepted did not finish: it failed, or the service stopped answering
    or ran past the job's deadline. ``refinement => 'auto'`` then trains in the backend."""


class ServiceError(TrailsError):
    """The service answered with an HTTP error; ``status`` is its code and the message is the
    service's own."""

    def __init__(self, message: str, status: int, *, hint: str | None = None, detail: str | None = None):
        super().__init__(message, hint=hint, detail=detail)
        self.status = status


class RefinementClient:
    """A client of one refinement service.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8093"``.
        token: bearer token, when the service requires one.
        timeout: seconds to wait for each answer.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8093", token: str | None = None,
                 timeout: float = 3.0):
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        self.timeout = float(timeout)

    @classmethod
    def from_config(cls, config=None) -> "RefinementClient":
        """From ``[service]``: ``url`` (else ``http://host:port``), ``token``, ``timeout_s``."""
        config = config if config is not None else load_config()
        url = config.get("service", "url", fallback="") or (
            f"http://{config.get('service', 'host', fallback='127.0.0.1')}:"
            f"{config.getint('service', 'port', fallback=8093)}")
        token = os.environ.get("TRAILS_SERVICE_TOKEN") or config.get("service", "token", fallback="")
        return cls(url, token, config.getfloat("service", "timeout_s", fallback=3.0))

    # -- the API

    def health(self) -> dict:
        """``GET /healthz``: ``{status, device, torch, cuda, jobs}``."""
        return self._json("GET", "/healthz")

    def available(self) -> bool:
        """True when the service answers ``/healthz``."""
        try:
            self.health()
            return True
        except ServiceUnavailable:
            return False

    def submit(self, job: JobSpec | dict) -> str:
        """``POST /v1/jobs`` of ``job`` (a :class:`JobSpec`, or its JSON) → the job id. Raises
        :class:`ServiceError` (422) for a bad job, or one the service cannot honour."""
        body = job.to_json() if isinstance(job, JobSpec) else job
        return self._json("POST", "/v1/jobs", body)["job_id"]

    def status(self, job_id: str) -> dict:
        """``GET /v1/jobs/{id}``: status, progress, message, rungs, result, error."""
        return self._json("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        """``DELETE /v1/jobs/{id}``: ask the job to stop; returns its status."""
        return self._json("DELETE", f"/v1/jobs/{job_id}")

    def model_state(self, job_id: str) -> bytes:
        """``GET /v1/jobs/{id}/model``: the winner's ``torch.save``-d state_dict (409 until done;
        ten times the usual timeout: it may be megabytes)."""
        return self._request("GET", f"/v1/jobs/{job_id}/model", timeout=10 * self.timeout)

    def jobs(self, role: str | None = None) -> list:
        """``GET /v1/jobs``: the jobs the service keeps (only ``role``'s when given), oldest first."""
        return self._json("GET", "/v1/jobs" + (f"?role={quote(role)}" if role is not None else ""))

    def wait(self, job_id: str, sleep: Callable[[], object] | None = None,
             on_status: Callable[[dict], None] | None = None, deadline: float | None = None,
             grace_s: float = 2.0, queue_patience_s: float | None = None) -> dict:
        """Poll until the job is done, failed or cancelled; return its last status.

        ``sleep()`` waits between polls (default 0.2 s); in a backend pass an interruptible
        wait such as ``lambda: plpy.execute("SELECT pg_sleep(0.2)")``. When ``sleep`` or
        ``on_status`` raises (a query cancel, ``statement_timeout``), the job is cancelled on
        the service and the exception propagates.

        Raises:
            ServiceFailed: the service stopped answering (each poll waits ``timeout`` seconds
                at most), the job still runs ``grace_s`` after ``deadline`` (a
                ``time.monotonic()`` value), or it is still queued (behind other jobs) after
                ``queue_patience_s``; the job is asked to cancel.
        """
        sleep = sleep or (lambda: time.sleep(0.2))
        started = time.monotonic()
        try:
            while True:
                try:
                    status = self.status(job_id)
                except ServiceUnavailable as error:
                    raise ServiceFailed(f"refinement job {job_id}: the service stopped answering "
                                        f"({error.message})", hint=START_HINT) from None
                if on_status is not None:
                    on_status(status)
                if status["status"] in FINISHED:
                    return status
                if (queue_patience_s is not None and status["status"] == "queued"
                        and time.monotonic() - started > queue_patience_s):
                    raise ServiceFailed(f"refinement job {job_id} still queued behind other jobs after "
                                        f"{queue_patience_s:.1f} s", hint="the service trains one job at a time")
                if deadline is not None and time.monotonic() > deadline + grace_s:
                    raise ServiceFailed(f"refinement job {job_id} still {status['status']} "
                                        f"{time.monotonic() - deadline:.1f} s after its deadline",
                                        hint="see the refinement service's log")
                sleep()
        except BaseException:
            try:
                self.cancel(job_id)
            except TrailsError:
                pass
            raise

    def run(self, spec: JobSpec, *, sleep: Callable[[], object] | None = None,
            on_rung: Callable[[dict], None] | None = None, on_submitted: Callable[[str], None] | None = None,
            deadline: float | None = None, queue_patience_s: float | None = None) -> JobOutcome:
        """Submit ``spec``, wait for it, and fetch the winner's weights.

        Args:
            spec: the job.
            sleep, deadline, queue_patience_s: as :meth:`wait` takes them.
            on_rung: called with each evaluation the job reports (a
                :class:`~trails.refinement.results.RungResult` as JSON), once, in order.
            on_submitted: called with the job id once the service accepted the job.

        Returns:
            :class:`JobOutcome`.

        Raises:
            ServiceUnavailable: nothing answers at the service's address.
            ServiceFailed: the service refused the job (its message, hint and detail), the job
                failed or was cancelled (the job's error), the service stopped answering, the
                job ran past the deadline, or its model could not be fetched.
        """
        try:
            job_id = self.submit(spec)
        except ServiceError as error:
            raise ServiceFailed(error.message, hint=error.hint, detail=error.detail) from None
        if on_submitted is not None:
            on_submitted(job_id)
        reported = [0]

        def on_status(status: dict) -> None:
            rungs = status.get("rungs", [])
            for rung in rungs[reported[0]:]:
                if on_rung is not None:
                    on_rung(rung)
            reported[0] = len(rungs)

        status = self.wait(job_id, sleep=sleep, on_status=on_status, deadline=deadline,
                           queue_patience_s=queue_patience_s)
        if status["status"] != "done":
            raise job_failure(job_id, status)
        result = status["result"]
        try:
            weights = self.model_state(job_id)
        except (ServiceUnavailable, ServiceError) as error:
            raise ServiceFailed(f"refinement job {job_id}: its model could not be fetched ({error.message})") from None
        return JobOutcome(job_id, result["winner"], float(result["valid_score"]), weights,
                          dict(result, rungs=status.get("rungs", []), job_id=job_id))

    # -- HTTP

    def _json(self, method: str, path: str, body: dict | None = None):
        return json.loads(self._request(method, path, body))

    def _request(self, method: str, path: str, body: dict | None = None,
                 timeout: float | None = None) -> bytes:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise _service_error(method, path, error) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise ServiceUnavailable(f"the refinement service at {self.base_url} is not reachable: {reason}",
                                     hint=START_HINT) from None


def job_failure(job_id: str, status: dict) -> ServiceFailed:
    """The :class:`ServiceFailed` of a job that ended ``failed`` or ``cancelled`` (its last
    ``status``): the job's error message, detail and hint (``{"error": {"message", "hint",
    "detail", "type"}}``; a plain string or no error is tolerated)."""
    error = status.get("error")
    error = error if isinstance(error, dict) else {"message": error}
    return ServiceFailed(f"refinement job {job_id} {status['status']}: {error.get('message') or status.get('message')}",
                         detail=error.get("detail"), hint=error.get("hint") or "see the refinement service's log")


def _service_error(method: str, path: str, error: urllib.error.HTTPError) -> ServiceError:
    body = error.read()
    payload: dict = {}
    try:
        decoded = json.loads(body)
        payload = decoded if isinstance(decoded, dict) else {}
        message = payload.get("error")
        message = message if isinstance(message, str) else json.dumps(decoded)
    except ValueError:
        message = body.decode(errors="replace").strip() or error.reason
    hint = payload.get("hint") if isinstance(payload.get("hint"), str) else None
    hint = hint or {401: "set [service] token (or $TRAILS_SERVICE_TOKEN) to the service's token",
                    404: "the job may have been forgotten: the service keeps [service] max_jobs jobs"}.get(error.code)
    detail = payload.get("detail") if isinstance(payload.get("detail"), str) else None
    return ServiceError(f"refinement service: {message} (HTTP {error.code} on {method} {path})",
                        error.code, hint=hint, detail=detail)
