"""The refinement service: successive halving out of the database, on a GPU when there is one.

Run it with ``scripts/start_refinement_service.sh`` or::

    python -m trails.refinement.service [--config config.ini] [--host 127.0.0.1] [--port 8093]

Defaults come from ``[service]`` of ``config.ini``: ``host`` (127.0.0.1: reachable from this
machine only; any other address needs a token, or the service refuses to start), ``port``,
``token`` (empty: no authentication; otherwise every endpoint but ``/healthz`` needs
``Authorization: Bearer <token>``; ``$TRAILS_SERVICE_TOKEN`` wins over the file), ``dsn``
(host, port, user; empty: libpq's ``PGHOST``/``PGPORT``/``PGUSER``...), ``cache_mb``,
``max_table_mb``, ``max_jobs``, and where candidates train: ``executor`` (``local``: in this
process; ``ray``: on Ray workers, see :mod:`trails.refinement.ray_executor`), ``ray_address``,
``ray_workers``, ``ray_cpus_per_worker``.

**The caller's data, exactly.** A job from ``model_selection`` names its ``database``, the
calling ``role`` and the schema-qualified tables (with their OIDs) the backend resolved in
the caller's session; the service connects to that database and reads exactly those tables,
after checking that each OID still names that table there and that the role may SELECT from it
— or fails the job saying why. When the service's own role may (a member of the caller's role,
or a superuser), it then reads as the caller (``SET LOCAL ROLE``): PostgreSQL applies the
caller's privileges and row-level security policies to the rows read. (A job without ``tables`` — the API used directly — resolves
``dataset`` by name in the DSN's database.)

API (JSON; every error is ``{"error": "<message>", ...}``):

* ``POST /v1/jobs`` — ``{dataset, label, layout_id, candidates: ["8-16-32-64", ...], u, eta,
  max_epochs, deadline_s, seed}`` plus optional ``metric`` (the layout's task's default when
  absent), ``batch_size``, ``iter_per_epoch``, ``learning_rate`` overriding ``[refinement]`` → 202 ``{job_id, status}``; 422 for a bad
  payload. ``deadline_s`` counts from the submission: queueing and loading rows spend it too.
* ``GET /v1/jobs/{id}`` — ``{job_id, status: queued|loading|running|done|failed|cancelled,
  progress (0..1), message, rungs: [{arch, rung, total_epochs, valid_score (the metric, on the
  decision sample), seconds, ...}], result (when done): {winner, valid_score, metric, valid_rows, decision_score,
  decision_rows, deadline_hit, planned_epochs, trained_epochs, winner_epochs, n_ids, n_fields,
  embedding_dim, batch_norm, training_dtype, ...}, error (when failed):
  {message, hint, detail, type}}``.
* ``GET /v1/jobs/{id}/model`` — the winner's ``state_dict`` (``torch.save`` bytes); 409 until
  the job is done.
* ``DELETE /v1/jobs/{id}`` — cancel; a running job stops within a training iteration.
* ``GET /v1/jobs`` — every job kept, oldest first, with status and progress.
* ``GET /healthz`` — ``{status: "ok", device, torch, cuda, executor ("local": one worker
  thread; "ray": with ``ray_address``), workers, devices (one per worker), jobs: {status: count}}``.

Jobs run one at a time on a worker thread; with ``executor = ray`` each rung of a job trains
its candidates on Ray's workers at once, successive halving still decided here. Each job reads its train and valid splits from
PostgreSQL through psycopg2 (a server-side cursor, chunk by chunk, encoded with the stored
layout ``layout_id``) straight onto the device, and the tensors stay cached per (database, role,
tables, layout) up to ``cache_mb``, so the next job on the same data starts training at once.

**Streaming start** (``[service] stream_train = true``; off by default): the valid split is read
first, then the train split in a background thread while training already runs on the rows read
so far (each epoch uses the rows in when it starts: :mod:`trails.refinement.stream`); a job's
result reports ``training_started_after_s`` and ``train_rows_at_start``. (With ``executor =
ray`` it gains nothing: the data is shipped to the workers once the whole split is read.)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hmac
import logging
import os
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Optional

import torch
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

import trails
from trails.config import load_config
from trails.errors import TrailsError
from trails.refinement.data import SplitTensors, load_split
from trails.model import state_to_bytes
from trails.refinement.halving import Cancelled, LocalExecutor, Progress, successive_halving
from trails.refinement.trainer import TrainingSettings, default_device, warm_up_optimizer
from trails.space import arch_text, parse_arch

log = logging.getLogger("trails.refinement.service")

STATUSES = ("queued", "loading", "running", "done", "failed", "cancelled")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
APPLICATION_NAME = "trails refinement service"
FINISHED = ("done", "failed", "cancelled")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]`` of ``config.ini`` (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 8093
    token: str = ""
    dsn: str = ""
    cache_mb: int = 4096
    max_jobs: int = 100
    max_table_mb: int = 8192
    executor: str = "local"
    ray_address: str = ""
    ray_workers: int = 0
    ray_cpus_per_worker: int = 1
    stream_train: bool = False

    def validate(self) -> None:
        """Refuse to serve the network without a token, or an unknown executor (raises TrailsError)."""
        if self.executor not in EXECUTORS:
            raise TrailsError(f"[service] executor is {self.executor!r}, but must be one of {', '.join(EXECUTORS)}",
                              hint="local trains in the service's process; ray on a Ray cluster (pip install 'trails[ray]')")
        if not self.token and self.host not in LOOPBACK:
            raise TrailsError(f"refusing to bind {self.host} without a token: anyone who reaches it could "
                              "train on any table the service's role can read and download the weights",
                              hint="set [service] token or $TRAILS_SERVICE_TOKEN (and the same token on the "
                                   "database side), or bind 127.0.0.1")

    @classmethod
    def from_config(cls, config=None) -> "ServiceSettings":
        config = config if config is not None else load_config()
        section = "service"
        defaults = cls()
        return cls(
            host=config.get(section, "host", fallback=defaults.host) or defaults.host,
            port=config.getint(section, "port", fallback=defaults.port),
            token=os.environ.get("TRAILS_SERVICE_TOKEN") or config.get(section, "token", fallback=""),
            dsn=config.get(section, "dsn", fallback=""),
            cache_mb=config.getint(section, "cache_mb", fallback=defaults.cache_mb),
            max_jobs=config.getint(section, "max_jobs", fallback=defaults.max_jobs),
            max_table_mb=config.getint(section, "max_table_mb", fallback=defaults.max_table_mb),
            executor=config.get(section, "executor", fallback=defaults.executor).strip().lower() or defaults.executor,
            ray_address=config.get(section, "ray_address", fallback=""),
            ray_workers=config.getint(section, "ray_workers", fallback=defaults.ray_workers),
            ray_cpus_per_worker=config.getint(section, "ray_cpus_per_worker", fallback=defaults.ray_cpus_per_worker),
            stream_train=config.getboolean(section, "stream_train", fallback=defaults.stream_train),
        )

    def create_executor(self, cpu_only: bool = False):
        """The executor jobs train with: :class:`~trails.refinement.halving.LocalExecutor`, or a
        :class:`~trails.refinement.ray_executor.RayExecutor` whose workers use the cluster's GPUs
        unless ``cpu_only`` (``--device cpu``). Raises TrailsError when Ray cannot be used."""
        if self.executor == "ray":
            from trails.refinement.ray_executor import RayExecutor

            return RayExecutor(self.ray_address, self.ray_workers, self.ray_cpus_per_worker,
                               use_gpu=False if cpu_only else None)
        return LocalExecutor()


# --- the request ------------------------------------------------------------------------------


class JobRequest(BaseModel):
    """The body of ``POST /v1/jobs``. Unknown fields are rejected (a typo is a 422)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, description="dataset name as model_selection takes it")
    database: Optional[str] = Field(None, min_length=1, description="the caller's database (read there)")
    role: Optional[str] = Field(None, min_length=1, description="the calling role: only tables it may "
                                "SELECT are read, and trails.jobs() shows it its own jobs")
    tables: Optional[dict[str, str]] = Field(None, description="split → schema-qualified table, as the "
                                             "caller's session resolved it")
    oids: Optional[dict[str, int]] = Field(None, description="split → that table's OID")
    split_bounds: Optional[dict[str, list[int]]] = Field(None, description="hash-split percent bounds "
                                                         "per split (one table split 70/20/10)")
    label: str = Field("label", min_length=1)
    layout_id: int = Field(ge=1, description="a row of trails.layouts for this dataset and label")
    layout: Optional[dict] = Field(None, description="that row's layout JSON; sent by a caller whose "
                                   "transaction created the row and has not committed it yet")
    candidates: list[str] = Field(min_length=1, max_length=10000)
    u: int = Field(ge=1, description="first-rung epochs U (successive halving's r)")
    eta: int = Field(3, ge=2, description="reduction factor η")
    max_epochs: int = Field(27, ge=1, description="maximum epochs R")
    deadline_s: Optional[float] = Field(None, gt=0, description="seconds from submission")
    seed: int = 0
    metric: Optional[str] = Field(None, description="the metric successive halving decides with "
                                  "(one of the layout's task; its default when absent)")
    batch_size: Optional[int] = Field(None, ge=1)
    iter_per_epoch: Optional[int] = Field(None, ge=1)
    learning_rate: Optional[float] = Field(None, gt=0)
    finish: bool = Field(False, description="train the winner on until the deadline, its learning "
                         "rate annealed over exactly the epochs that fit (needs deadline_s)")

    @field_validator("candidates")
    @classmethod
    def _archs_parse(cls, candidates: list[str]) -> list[str]:
        return [arch_text(parse_arch(text)) for text in candidates]

    @model_validator(mode="after")
    def _u_within_max_epochs(self) -> "JobRequest":
        if self.u > self.max_epochs:
            raise ValueError(f"u is {self.u}, but must be u <= max_epochs ({self.max_epochs})")
        if (self.tables is None) != (self.oids is None) or (
                self.tables is not None and not set(self.tables) == set(self.oids) == {"train", "valid", "test"}):
            raise ValueError("tables and oids go together, one entry per split (train, valid, test)")
        return self


# --- jobs -------------------------------------------------------------------------------------


class Job:
    """One submitted request and everything known about it; fields change under ``lock``."""

    def __init__(self, request: JobRequest):
        self.id = uuid.uuid4().hex[:16]
        self.request = request
        self.lock = threading.Lock()
        self.cancel_event = threading.Event()
        self.status = "queued"
        self.progress = 0.0
        self.message = "queued"
        self.rungs: list[dict] = []
        self.result: dict | None = None
        self.error: dict | None = None
        self.model_bytes: bytes | None = None
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.deadline = (time.monotonic() + request.deadline_s) if request.deadline_s else None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def update(self, **fields) -> None:
        with self.lock:
            for name, value in fields.items():
                setattr(self, name, value)

    def on_progress(self, event: Progress) -> None:
        with self.lock:
            self.progress = round(event.fraction, 4)
            self.message = event.message
            if event.result is not None:
                self.rungs.append(event.result.to_json())

    def summary(self) -> dict:
        """Status without rungs/result (for the job list)."""
        with self.lock:
            end = self.finished_at or time.time()
            return {"job_id": self.id, "status": self.status, "progress": self.progress,
                    "message": self.message, "dataset": self.request.dataset,
                    "database": self.request.database, "role": self.request.role,
                    "label": self.request.label, "k": len(self.request.candidates),
                    "created_at": self.created_at, "started_at": self.started_at,
                    "finished_at": self.finished_at,
                    "elapsed_s": round(end - self.created_at, 3),
                    "winner": self.result["winner"] if self.result else None,
                    "metric": self.result["metric"] if self.result else None,
                    "valid_score": self.result["valid_score"] if self.result else None}

    def to_json(self) -> dict:
        data = self.summary()
        with self.lock:
            data.update(request=self.request.model_dump(), rungs=list(self.rungs),
                        result=self.result, error=self.error)
        return data


class TensorCache:
    """Decoded splits on the device, least recently used first out, at most ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.entries: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()  # a streaming read puts its split from the reader thread

    def get(self, key):
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
            return None

    def put(self, key, splits: tuple) -> None:
        size = sum(split.nbytes for split in splits)
        if size > self.max_bytes:
            return
        with self.lock:
            self.entries[key] = splits
            self.entries.move_to_end(key)
            while sum(s.nbytes for value in self.entries.values() for s in value) > self.max_bytes:
                self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)


def _connect(dsn: str, database: str | None = None):
    """A connection through ``dsn``, to ``database`` when given (the job's, overriding the DSN's),
    named ``APPLICATION_NAME`` in pg_stat_activity."""
    import psycopg2

    names = {"application_name": APPLICATION_NAME, **({"dbname": database} if database else {})}
    return psycopg2.connect(dsn, **names)


def _read_as(connection, role: str | None) -> bool:
    """Make the rest of ``connection``'s transaction read as ``role`` (``SET LOCAL ROLE``), so
    that PostgreSQL itself applies the caller's privileges and row-level security policies to
    the rows read. Possible when the service's role is a member of ``role`` (or a superuser);
    False otherwise (or without a role), and the explicit privilege check of
    :func:`~trails.data.dataset.dataset_from_identity` is what stands."""
    import psycopg2
    from psycopg2 import sql

    if not role:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT trails_read_as")
        try:
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        except psycopg2.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT trails_read_as")
            return False
        cursor.execute("RELEASE SAVEPOINT trails_read_as")
    return True


def _close(connection) -> None:
    """End ``connection``'s (read-only) transaction and close it; errors ignored (it may be gone)."""
    with contextlib.suppress(Exception):
        connection.rollback()
    with contextlib.suppress(Exception):
        connection.close()


class JobManager:
    """Queue, worker thread and bookkeeping of jobs."""

    def __init__(self, settings: ServiceSettings, device: torch.device, cpu_only: bool = False):
        self.settings = settings
        self.device = device
        self.cpu_only = cpu_only  # --device cpu: Ray workers stay off GPUs too
        self.jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue()
        self.cache = TensorCache(settings.cache_mb * 2**20)
        self.current: Job | None = None
        self.executor = None
        self.worker = threading.Thread(target=self._work, name="trails-refinement-worker", daemon=True)

    def start(self) -> None:
        """Create the executor (Ray's workers start here) and the job worker thread."""
        self.executor = self.settings.create_executor(self.cpu_only)
        warm_up_optimizer()  # before the first job, so that it cannot delay a cancel
        self.worker.start()

    def stop(self) -> None:
        current = self.current
        if current is not None:
            current.cancel_event.set()
        self.queue.put(None)
        self.worker.join(timeout=5)
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()

    def describe_executor(self) -> dict:
        """``executor``, ``workers`` and ``devices`` for ``/healthz``."""
        if self.executor is not None and self.executor.name == "ray":
            return self.executor.describe()
        return {"executor": "local", "workers": 1, "devices": [device_description(self.device)]}

    # -- the API's operations

    def submit(self, request: JobRequest) -> Job:
        job = Job(request)
        with self.lock:
            self.jobs[job.id] = job
            self._forget_old_jobs()
        self.queue.put(job)
        log.info("job %s queued: %s, %d candidates, u=%d eta=%d max_epochs=%d deadline_s=%s",
                 job.id, request.dataset, len(request.candidates), request.u, request.eta,
                 request.max_epochs, request.deadline_s)
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}: it never existed or was forgotten")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel_event.set()
        with job.lock:
            if job.status == "queued":
                job.status, job.message, job.finished_at = "cancelled", "cancelled while queued", time.time()
        log.info("job %s: cancel requested", job_id)
        return job

    def all(self) -> list[Job]:
        with self.lock:
            return list(self.jobs.values())

    def counts(self) -> dict:
        counts = dict.fromkeys(STATUSES, 0)
        for job in self.all():
            counts[job.status] += 1
        return counts

    def _forget_old_jobs(self) -> None:
        finished = [job_id for job_id, job in self.jobs.items() if job.finished]
        while len(self.jobs) > self.settings.max_jobs and finished:
            del self.jobs[finished.pop(0)]

    # -- the worker

    def _work(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if job.cancel_event.is_set():
                continue
            self.current = job
            try:
                self._run(job)
            finally:
                self.current = None

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        job.update(status="loading", started_at=time.time(), message="reading rows from PostgreSQL")
        reader = None
        try:
            train_data, valid_data, layout, reader = self._load(job)
            training_starts_s = time.monotonic() - started
            rows_at_start = reader.split.rows_read if reader is not None else len(train_data)
            request = job.request
            job.update(status="running", message=f"training {len(request.candidates)} candidates")
            settings = TrainingSettings.from_config(batch_size=request.batch_size,
                                                    iter_per_epoch=request.iter_per_epoch,
                                                    learning_rate=request.learning_rate)
            result = successive_halving(
                [parse_arch(text) for text in request.candidates],
                train_data, valid_data, layout.n_ids, layout.n_fields, request.u, request.eta,
                request.max_epochs, settings=settings, seed=request.seed, device=self.device,
                deadline=job.deadline, should_stop=job.cancel_event.is_set,
                progress=job.on_progress, finish=request.finish,
                task=layout.task.with_metric(request.metric), executor=self.executor)
            model_bytes = state_to_bytes(result.state_dict)
            summary = result.to_json()
            summary.pop("rungs")
            summary.update(train_rows=len(train_data), valid_rows=len(valid_data),
                           training_started_after_s=round(training_starts_s, 3),
                           train_rows_at_start=rows_at_start,
                           layout_id=layout.layout_id, executor=self.executor.name,
                           workers=getattr(self.executor, "workers", 1), total_seconds=time.monotonic() - started)
            job.update(status="done", progress=1.0, result=summary, model_bytes=model_bytes,
                       finished_at=time.time(),
                       message=f"done: {summary['winner']} valid {summary['metric']} {result.valid_score:.4f}"
                               + (" (deadline hit)" if result.deadline_hit else ""))
            log.info("job %s done in %.1fs: %s valid %s %.4f, %d/%d epochs%s", job.id,
                     time.monotonic() - started, summary["winner"], summary["metric"], result.valid_score,
                     result.trained_epochs, result.planned_epochs,
                     ", deadline hit" if result.deadline_hit else "")
        except Cancelled:
            job.update(status="cancelled", message="cancelled", finished_at=time.time())
            log.info("job %s cancelled after %.1fs", job.id, time.monotonic() - started)
        except TrailsError as error:
            job.update(status="failed", finished_at=time.time(), message=error.message,
                       error={"message": error.message, "hint": error.hint, "detail": error.detail,
                              "type": "TrailsError"})
            log.warning("job %s failed: %s", job.id, error.message)
        except Exception as error:  # the service stays up; the job says what went wrong
            job.update(status="failed", finished_at=time.time(), message=str(error),
                       error={"message": f"{type(error).__name__}: {str(error).strip()}",
                              "hint": f"the refinement service's log has the traceback (job {job.id})",
                              "detail": None, "type": type(error).__name__})
            log.exception("job %s failed", job.id)
        finally:
            if reader is not None:
                reader.stop()

    def _load(self, job: Job) -> tuple:
        """(train, valid, layout, reader) for ``job``, from the cache or from PostgreSQL.

        With ``[service] stream_train`` the valid split is read first, then the
        train split in a background :class:`~trails.refinement.stream.Reader` into a
        :class:`~trails.refinement.stream.GrowingSplit`, returned as soon as its first chunk is
        in (training starts on it); ``reader`` is None otherwise (and for cached splits). The
        connection (one REPEATABLE READ transaction: the rows counted are the rows read) is
        closed here, or by the reader when it ends.
        """
        from trails.data.dataset import dataset_from_identity, resolve_dataset
        from trails.data.layout import Layout
        from trails.data.layout_store import load_layout
        from trails.data.session import PgSession
        from trails.refinement.stream import GrowingSplit, Reader

        request = job.request
        connection = _connect(self.settings.dsn, request.database)
        handed_over = False
        try:
            connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
            session = PgSession(connection)
            if request.tables is not None:
                dataset = dataset_from_identity(session, request.dataset, request.model_dump())
            else:
                dataset = resolve_dataset(session, request.dataset)
            if request.layout is not None:
                layout = Layout.from_json(request.layout, request.layout_id)
                if layout.label != request.label:
                    raise TrailsError(f"the layout sent encodes label {layout.label!r}, not {request.label!r}",
                                      hint="send the layout of this dataset and label")
            else:
                layout = _layout_for(session, load_layout, request, dataset)
            database = session.query("SELECT current_database() AS d")[0]["d"]
            # per role too: rows are read as the caller, whose row-level security may hide some
            key = (database, request.role, tuple(sorted((request.oids or dataset.tables).items())),
                   str(dataset.split_bounds), layout.layout_id, str(self.device))
            cached = self.cache.get(key)
            if cached is not None:
                log.info("job %s: %s splits from the cache", job.id, request.dataset)
                return (*cached, layout, None)
            if _read_as(connection, request.role):
                log.info("job %s: reading as role %s", job.id, request.role)
            rows = self._check_size(session, dataset, layout)

            def read(split: str, on_chunk) -> object:
                return load_split(session, dataset, layout, split, self.device, ordered=False, on_chunk=on_chunk)

            valid = read("valid", self._loading_progress(job, "valid"))
            if not self.settings.stream_train:
                train = read("train", self._loading_progress(job, "train"))
                self.cache.put(key, (train, valid))
                log.info("job %s: read %d train and %d valid rows of %s", job.id, len(train), len(valid),
                         request.dataset)
                return train, valid, layout, None

            def read_train(on_chunk) -> None:
                from trails.refinement.data import iter_split_chunks

                try:
                    for _ in iter_split_chunks(session, dataset, layout, "train", self.device, on_chunk,
                                               ordered=False):
                        pass  # each chunk is copied into the GrowingSplit by on_chunk
                finally:
                    _close(connection)

            def done(train) -> None:
                self.cache.put(key, (train, valid))
                log.info("job %s: read %d train rows of %s while training", job.id, len(train), request.dataset)

            reader = Reader(GrowingSplit(rows["train"], layout.n_fields, self.device), read_train, done,
                            self._loading_progress(job, "train"))
            handed_over = True
            reader.start()
            reader.wait_for_rows(1, job.cancel_event.is_set)
            log.info("job %s: training starts on %d of %d train rows (the rest is read meanwhile)", job.id,
                     reader.split.rows_read, rows["train"])
            return reader.split, valid, layout, reader
        finally:
            if not handed_over:
                _close(connection)

    def _check_size(self, session, dataset, layout) -> dict:
        """Rows of the train and valid splits (``{split: rows}``); raises TrailsError when their
        decoded tensors would exceed ``max_table_mb`` (counted first: the machine is not taken
        down by a table larger than memory)."""
        from trails.refinement.data import require_fits

        rows = {split: session.query(f"SELECT count(*) AS n {dataset.source(split)}")[0]["n"]
                for split in ("train", "valid")}
        require_fits(dataset.name, sum(rows.values()), layout.n_fields, self.settings.max_table_mb,
                     "[service] max_table_mb")
        return rows

    @staticmethod
    def _loading_progress(job: Job, split: str):
        def on_chunk(chunk: SplitTensors, rows_so_far: int) -> None:
            if job.cancel_event.is_set():
                raise Cancelled("cancelled while reading rows")
            with job.lock:
                if job.status == "loading":  # not over training's progress (a streaming start)
                    job.message = f"reading {split} rows: {rows_so_far}"
        return on_chunk


def _layout_for(session, load_layout, request: JobRequest, dataset):
    """The stored layout ``request.layout_id``, checked against the request's dataset and label."""
    rows = session.query("SELECT train_table, label FROM trails.layouts WHERE layout_id = $1",
                         [request.layout_id], ["bigint"])
    if not rows:
        raise TrailsError(f"layout {request.layout_id} not found in trails.layouts",
                          hint="create it with trails.data.layout_store.get_or_create_layout")
    if rows[0]["train_table"] != dataset.train_table or rows[0]["label"] != request.label:
        raise TrailsError(
            f"layout {request.layout_id} encodes {rows[0]['train_table']} with label "
            f"{rows[0]['label']!r}, not {dataset.train_table} with label {request.label!r}",
            hint="pass the layout_id of this dataset and label")
    return load_layout(session, request.layout_id)


# --- the app ----------------------------------------------------------------------------------


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "invalid job: " + "; ".join(parts)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def create_app(settings: ServiceSettings | None = None, device=None) -> FastAPI:
    """The FastAPI app; its job worker starts and stops with the app's lifespan."""
    settings = settings or ServiceSettings.from_config()
    settings.validate()
    cpu_only = device is not None and torch.device(device).type == "cpu"
    device = torch.device(device) if device is not None else default_device()
    manager = JobManager(settings, device, cpu_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()
        log.info("refinement service on %s:%d, device %s, torch %s, auth %s", settings.host,
                 settings.port, device_description(device), torch.__version__,
                 "on" if settings.token else "off")
        yield
        manager.stop()

    app = FastAPI(title="trails refinement service", version=trails.__version__, lifespan=lifespan)
    app.state.manager = manager

    def require_token(request: Request) -> None:
        if not settings.token:
            return
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {settings.token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return JSONResponse({"error": _validation_message(error)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "device": device_description(device), "torch": torch.__version__,
                "cuda": device.type == "cuda", "trails": trails.__version__,
                **manager.describe_executor(),
                "jobs": manager.counts(), "cached_splits": len(manager.cache)}

    @app.post("/v1/jobs", status_code=202, dependencies=[Depends(require_token)])
    def submit(request: JobRequest) -> dict:
        job = manager.submit(request)
        return {"job_id": job.id, "status": job.status}

    @app.get("/v1/jobs", dependencies=[Depends(require_token)])
    def list_jobs(role: Optional[str] = None) -> list:
        """Every job kept, or only those of ``role`` (what trails.jobs() asks for a non-superuser)."""
        return [job.summary() for job in manager.all() if role is None or job.request.role == role]

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(require_token)])
    def job_status(job_id: str) -> dict:
        return manager.get(job_id).to_json()

    @app.get("/v1/jobs/{job_id}/model", dependencies=[Depends(require_token)])
    def job_model(job_id: str) -> Response:
        job = manager.get(job_id)
        with job.lock:
            status, model_bytes = job.status, job.model_bytes
        if status != "done" or model_bytes is None:
            raise HTTPException(409, f"job {job_id} is {status}: its model is there once it is done")
        return Response(model_bytes, media_type="application/octet-stream")

    @app.delete("/v1/jobs/{job_id}", dependencies=[Depends(require_token)])
    def cancel(job_id: str) -> dict:
        return manager.cancel(job_id).to_json()

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trails.refinement.service",
                                     description="trails refinement service (successive halving)")
    parser.add_argument("--config", help="config.ini to read (default: $TRAILS_CONFIG or the repository's)")
    parser.add_argument("--host", help="address to bind (default [service] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default [service] port, 8093)")
    parser.add_argument("--dsn", help="libpq connection string (default [service] dsn; empty: PG* variables)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available; with executor ray, "
                        "cpu keeps the Ray workers off GPUs)")
    parser.add_argument("--stream-train", action=argparse.BooleanOptionalAction, default=None,
                        help="start training on the first chunk of the train split (default [service] stream_train)")
    parser.add_argument("--executor", choices=EXECUTORS, help="where candidates train (default [service] executor)")
    parser.add_argument("--ray-address", help="Ray cluster to join: auto or host:port (default [service] "
                        "ray_address; empty: a private local instance)")
    parser.add_argument("--ray-workers", type=int, help="Ray actors training candidates (default [service] "
                        "ray_workers; 0: one per GPU, else one per ray_cpus_per_worker CPUs)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.config:
        os.environ["TRAILS_CONFIG"] = os.path.abspath(args.config)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServiceSettings.from_config()
    overrides = {name: value for name, value in
                 (("host", args.host), ("port", args.port), ("dsn", args.dsn), ("executor", args.executor),
                  ("ray_address", args.ray_address), ("ray_workers", args.ray_workers),
                  ("stream_train", args.stream_train)) if value is not None}
    settings = ServiceSettings(**{**settings.__dict__, **overrides})
    try:
        settings.validate()
    except TrailsError as error:
        parser.exit(2, f"trails refinement service: {error.message}\nHINT: {error.hint}\n")
    import uvicorn

    uvicorn.run(create_app(settings, args.device), host=settings.host, port=settings.port,
                log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
