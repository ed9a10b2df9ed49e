"""The service's jobs: :class:`Job` (one submitted :class:`~trails.refinement.jobs.JobSpec` and
everything known about it) and :class:`JobManager` (the queue, the worker thread that runs one
job at a time, and the bookkeeping the API reads).

A job trains with exactly its own settings (``spec.settings``); one the service cannot honour
(:func:`refusal`) is refused at submission rather than trained otherwise.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid

import torch

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors
from trails.refinement.executor import Executor
from trails.refinement.halving import HalvingConfig, HalvingResult, Progress, halve
from trails.refinement.jobs import FINISHED, STATUSES, JobSpec
from trails.refinement.precision import cpu_has_native_bf16, resolve_precision
from trails.refinement.service.cache import TensorCache
from trails.refinement.service.reading import Loaded, SplitLoader
from trails.refinement.service.settings import ServiceSettings
from trails.refinement.settings import TrainingSettings
from trails.refinement.trainer import Cancelled, warm_up_optimizer
from trails.families import parse_candidate
from trails.families.stored_start import StoredStart

__all__ = ["Job", "JobManager", "UnknownJob", "refusal"]

log = logging.getLogger("trails.refinement.service")


class UnknownJob(LookupError):
    """No job with that id (never submitted, or forgotten)."""


def refusal(settings: TrainingSettings, device: torch.device) -> TrailsError | None:
    """Why a job's ``settings`` cannot be honoured by candidates training on ``device`` (None
    when they can): ``precision = bf16`` on a CPU without bfloat16 instructions (emulated, many
    times slower) or on a GPU without bfloat16. A GPU this process cannot see (Ray workers on
    other machines) is not checked here: its worker refuses the job."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return None
    if settings.precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return TrailsError("precision bf16 cannot be honoured: this service trains on a CPU without bfloat16 "
                           "instructions (it would only emulate bf16, many times slower)",
                           hint="send precision auto or fp32, or use a service on a device with bfloat16")
    try:
        resolve_precision(settings.precision, device)
    except TrailsError as error:
        return TrailsError(f"precision {settings.precision} cannot be honoured: {error.message}",
                           hint="send precision auto or fp32")
    return None


class Job:
    """One submitted job and everything known about it; fields change under ``lock``."""

    def __init__(self, spec: JobSpec):
        self.id = uuid.uuid4().hex[:16]
        self.spec = spec
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
        self.deadline = (time.monotonic() + spec.deadline_s) if spec.deadline_s else None

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

    def loading_progress(self, split: str):
        """An ``on_chunk`` for reading ``split``: a cancel stops the read; the message counts rows."""
        def on_chunk(chunk: SplitTensors, rows_so_far: int) -> None:
            if self.cancel_event.is_set():
                raise Cancelled("cancelled while reading rows")
            with self.lock:
                if self.status == "loading":  # not over training's progress (a streaming start)
                    self.message = f"reading {split} rows: {rows_so_far}"
        return on_chunk

    def fail(self, error: BaseException) -> None:
        """The job failed with ``error`` (its message; a traceback only in the service's log)."""
        if isinstance(error, TrailsError):
            self.update(status="failed", finished_at=time.time(), message=error.message,
                        error={"message": error.message, "hint": error.hint, "detail": error.detail,
                               "type": "TrailsError"})
        else:
            self.update(status="failed", finished_at=time.time(), message=str(error),
                        error={"message": f"{type(error).__name__}: {str(error).strip()}",
                               "hint": f"the refinement service's log has the traceback (job {self.id})",
                               "detail": None, "type": type(error).__name__})

    def summary(self) -> dict:
        """Status without rungs/result (for the job list)."""
        with self.lock:
            end = self.finished_at or time.time()
            return {"job_id": self.id, "status": self.status, "progress": self.progress,
                    "message": self.message, "dataset": self.spec.dataset,
                    "database": self.spec.database, "role": self.spec.role,
                    "label": self.spec.label, "k": len(self.spec.candidates),
                    "created_at": self.created_at, "started_at": self.started_at,
                    "finished_at": self.finished_at,
                    "elapsed_s": round(end - self.created_at, 3),
                    "winner": self.result["winner"] if self.result else None,
                    "metric": self.result["metric"] if self.result else None,
                    "valid_score": self.result["valid_score"] if self.result else None}

    def to_json(self) -> dict:
        data = self.summary()
        with self.lock:
            data.update(request=self.spec.to_json(), rungs=list(self.rungs), result=self.result, error=self.error)
        return data


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
        self.loader = SplitLoader(settings, device, self.cache)
        self.current: Job | None = None
        self.executor: Executor | None = None
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
        if self.executor is not None:
            self.executor.close()

    def describe_executor(self) -> dict:
        """``executor``, ``workers`` and ``devices`` for ``/healthz``."""
        return self.executor.describe(self.device) if self.executor is not None else {}

    # -- the API's operations

    def submit(self, spec: JobSpec) -> Job:
        """Queue ``spec``. Raises TrailsError when its settings cannot be honoured here."""
        device = torch.device(self.executor.device_name(self.device)) if self.executor is not None else self.device
        refused = refusal(spec.settings, device)
        if refused is not None:
            raise refused
        job = Job(spec)
        with self.lock:
            self.jobs[job.id] = job
            self._forget_old_jobs()
        self.queue.put(job)
        log.info("job %s queued: %s, %d candidates, u=%d eta=%d max_epochs=%d deadline_s=%s",
                 job.id, spec.dataset, len(spec.candidates), spec.u, spec.eta, spec.max_epochs, spec.deadline_s)
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; raises :class:`UnknownJob`."""
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"no job {job_id!r}: it never existed or was forgotten")
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
        """Load, train and record one job; whatever happens, the job ends finished."""
        started = time.monotonic()
        job.update(status="loading", started_at=time.time(), message="reading rows from PostgreSQL")
        loaded = None
        try:
            loaded = self.loader.load(job.id, job.spec, job.loading_progress, job.cancel_event.is_set)
            training_starts_s = time.monotonic() - started
            job.update(status="running", message=f"training {len(job.spec.candidates)} candidates")
            result = self._train(job, loaded)
            summary = self._summary(result, loaded, training_starts_s, started)
            job.update(status="done", progress=1.0, result=summary, model_bytes=result.weights(),
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
            job.fail(error)
            log.warning("job %s failed: %s", job.id, error.message)
        except Exception as error:  # the service stays up; the job says what went wrong
            job.fail(error)
            log.exception("job %s failed", job.id)
        finally:
            if loaded is not None and loaded.reader is not None:
                loaded.reader.stop()

    def _train(self, job: Job, loaded: Loaded) -> HalvingResult:
        """Successive halving of ``job`` on ``loaded``, with the job's own settings."""
        spec, layout = job.spec, loaded.layout
        config = HalvingConfig(u=spec.u, settings=spec.settings, eta=spec.eta, max_epochs=spec.max_epochs,
                               seed=spec.seed, finish=spec.finish, task=layout.task.with_metric(spec.metric),
                               reserves=tuple(parse_candidate(text) for text in spec.reserves),
                               starts=tuple(StoredStart.from_json(start) for start in spec.starts))
        return halve([parse_candidate(text) for text in spec.candidates], loaded.train, loaded.valid,
                     layout.n_ids, layout.n_fields, config, device=self.device, deadline=job.deadline,
                     should_stop=job.cancel_event.is_set, progress=job.on_progress, executor=self.executor)

    def _summary(self, result: HalvingResult, loaded: Loaded, training_starts_s: float, started: float) -> dict:
        """The job's ``result``: the run's JSON without rungs (the job keeps them), and the service's own."""
        summary = result.to_json()
        summary.pop("rungs")
        summary.update(train_rows=len(loaded.train), valid_rows=len(loaded.valid),
                       training_started_after_s=round(training_starts_s, 3),
                       train_rows_at_start=loaded.train_rows_at_start, layout_id=loaded.layout.layout_id,
                       executor=self.executor.name, workers=self.executor.workers,
                       total_seconds=time.monotonic() - started)
        return summary
