"""Successive halving's training on a Ray cluster (``[service] executor = ray``).

The refinement service decides, Ray trains: :func:`~trails.refinement.halving.successive_halving`
keeps the rungs, the promotions, the best model and the deadline; this executor trains a rung's
candidates on a pool of Ray actors (:class:`RungWorker`), one candidate per free worker, so a
rung of K candidates runs on up to K workers at once.

* **Workers.** ``workers`` actors, each reserving ``cpus_per_worker`` CPUs (and running that many
  torch threads) and, when the cluster has GPUs, one GPU (``num_gpus = 1``: the worker trains on
  ``cuda``). ``workers = 0`` means one per GPU of the cluster, else one per ``cpus_per_worker``
  CPUs. They live as long as the executor (the service's lifetime), so torch is imported once.
* **Data, once per job.** The train split and the decision sample of the valid split are put into
  Ray's object store once per job (``ray.put`` of numpy arrays) and every worker loads them from
  there once (zero-copy on the CPU, one copy to its GPU); no task re-reads rows from PostgreSQL.
* **Promotion across workers.** A candidate's whole training state (weights, Adam, learning-rate
  schedule, shuffling generator: :meth:`Trial.export_state`) comes back from its task as an
  object reference; the next rung hands that reference to whichever worker is free, which
  continues the training exactly where it stopped.
* **Deadline and cancel.** Each task gets the seconds left (workers may run on other machines
  with other clocks); a cancel of the job stops every worker's current task within an iteration
  (the actors are threaded: :meth:`RungWorker.stop` runs beside the training).

``address``: ``""`` starts a private Ray instance inside this process, bound to 127.0.0.1 (Ray
binds loopback when ``$RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is ``0``, which :func:`import_ray`
sets for a private instance or a loopback head);
``"auto"`` joins the cluster this machine's ``ray start`` made; ``"host:port"`` joins that
cluster's head (the GCS address ``ray start --head`` prints). A cluster with token
authentication (Ray's ``RAY_AUTH_MODE=token``) is joined with the token in ``$RAY_AUTH_TOKEN``,
``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``: when one is there, token mode is switched on.

Needs the optional dependency ``ray`` (``pip install 'trails[ray]'``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
import warnings

import numpy as np
import torch

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors
from trails.refinement.book import RungBook
from trails.refinement.executor import device_description
from trails.refinement.schedule import Rung
from trails.refinement.steps import Advance, HalvingContext, advance_trial, timed_evaluation
from trails.families import Candidate, Trainable, get_family, parse_candidate
from trails.refinement.trainer import Cancelled, warm_up_optimizer

# Seconds the workers may take to start (import torch, reserve their CPUs/GPU) before the
# executor gives up: a cluster without the resources would otherwise leave them pending forever.
WORKER_START_S = 120.0
# Times a call to a worker is retried when the worker died (it is restarted meanwhile).
TASK_RETRIES = 3
# How often the driver checks for a cancel while tasks run.
POLL_S = 0.1
# Seconds of a task's time left kept for what follows it outside the worker: shipping the
# arguments and the trial's state back, and the driver's bookkeeping.
ROUND_TRIP_S = 0.3


def import_ray(address: str = ""):
    """The ``ray`` module, or a TrailsError saying how to install it. For a private instance or
    a head on this machine's loopback (``address`` empty or ``127.0.0.1:…``), Ray is first told
    to bind 127.0.0.1 only — read when ray is imported, so this must come first."""
    if not address or address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "[::1]"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or os.path.exists(os.path.expanduser("~/.ray/auth_token"))):
        os.environ["RAY_AUTH_MODE"] = "token"  # a token is at hand: the cluster's authentication
    try:
        import ray
    except ImportError:
        raise TrailsError("[service] executor = ray, but the ray package is not installed",
                          hint="pip install 'trails[ray]' (or ray) into the service's environment, "
                               "or set [service] executor = local") from None
    return ray


def connect(address: str) -> None:
    """Connect this process to Ray: a private instance on 127.0.0.1 when ``address`` is empty,
    else the cluster at ``address`` (``auto`` or ``host:port``). Raises TrailsError when it
    cannot."""
    ray = import_ray(address)
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address, logging_level="warning", log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, logging_level="warning",
                     log_to_driver=False)
    except Exception as error:
        raise TrailsError(f"could not connect to Ray at {address or 'a new local instance'}: "
                          f"{str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}",
                          hint="start a head with `ray start --head --port 6379` and set [service] "
                               "ray_address to its host:port, or leave ray_address empty") from None


def _split_arrays(split: SplitTensors) -> tuple:
    """(ids, values, labels) as CPU numpy arrays, what goes into the object store."""
    return tuple(tensor.detach().cpu().numpy() for tensor in (split.ids, split.values, split.labels))


def _split_tensors(arrays: tuple, device: torch.device) -> SplitTensors:
    """The inverse of :func:`_split_arrays` on ``device`` (CPU: no copy of the store's
    read-only arrays, which training never writes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
        tensors = [torch.from_numpy(np.asarray(array)) for array in arrays]
    return SplitTensors(*tensors).to(device)


class RungWorker:
    """One Ray actor: holds each job's data and trains candidates for it.

    Methods return ``(info, state)``: ``info`` a small dict (what the step did, the trial's
    epochs and seconds per iteration), ``state`` the trial's :meth:`Trial.export_state` (an
    object reference on the driver's side, handed on to the next rung's worker).
    """

    def __init__(self, threads: int, use_gpu: bool):
        torch.set_num_threads(max(1, int(threads)))
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.contexts: dict[str, HalvingContext] = {}
        self.stopped: set[str] = set()
        self.lock = threading.Lock()
        warm_up_optimizer()

    def describe(self) -> str:
        if self.device.type == "cuda":
            return device_description(self.device)
        return f"cpu ({torch.get_num_threads()} threads)"

    def load(self, job: str, train_arrays: tuple, decision_arrays: tuple, spec: dict) -> int:
        """Keep job ``job``'s data on this worker's device; returns its rows."""
        train_data = _split_tensors(train_arrays, self.device)
        decision_data = _split_tensors(decision_arrays, self.device)

        def should_stop() -> bool:
            return job in self.stopped

        with self.lock:
            self.contexts[job] = HalvingContext(
                train_data, decision_data, spec["n_ids"], spec["n_fields"], spec["settings"], spec["seed"],
                self.device, spec["task"], spec["max_units"], None, should_stop, spec["final_rows"],
                spec.get("starts", {}))
        return len(train_data)

    def release(self, job: str) -> None:
        """Drop job ``job``'s data; a task of it still running stops at its next iteration."""
        with self.lock:
            self.contexts.pop(job, None)
            self.stopped.add(job)  # kept: job ids are never reused
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def stop(self, job: str) -> None:
        """Make job ``job``'s running task raise Cancelled at its next iteration."""
        self.stopped.add(job)

    def _context(self, job: str) -> HalvingContext:
        context = self.contexts.get(job)
        if context is None:
            raise TrailsError("this Ray worker does not hold the job's data: it was restarted during the job",
                              hint="resubmit the job: the next one loads its data on every worker")
        return context

    def _trial(self, context: HalvingContext, candidate: str, state: dict | None) -> Trainable:
        """The trainable of ``candidate`` (its text): fresh when ``state`` is None."""
        if state is None:
            return context.new_trial(parse_candidate(candidate))
        return context.trial_from_state(parse_candidate(candidate), state, self.device)

    @staticmethod
    def _deadline(seconds_left):
        return None if seconds_left is None else time.monotonic() + seconds_left

    @staticmethod
    def _answer(trial: Trainable, step: Advance | None) -> tuple[dict, dict]:
        info = {"epochs_trained": trial.epochs_trained, "step": step}
        return info, trial.export_state()

    def advance(self, job: str, candidate: str, state: dict | None, total_epochs: int, seconds_left,
                evaluate_interrupted: bool) -> tuple[dict, dict]:
        """:func:`advance_trial` of the candidate (its text; fresh when ``state`` is None)."""
        context = self._context(job)
        trial = self._trial(context, candidate, state)
        step = advance_trial(trial, total_epochs, context, self._deadline(seconds_left), evaluate_interrupted)
        return self._answer(trial, step)

    def finish(self, job: str, candidate: str, state: dict | None, seconds_left: float,
               evaluation_s: float) -> tuple[dict, dict]:
        """The finishing phase of the candidate (its family's ``finish``; ``step`` None when
        nothing fitted)."""
        context = self._context(job)
        trial = self._trial(context, candidate, state)
        step = get_family(trial.candidate.family).finish(trial, context, self._deadline(seconds_left), evaluation_s)
        return self._answer(trial, step)

    def evaluate(self, job: str, candidate: str, state: dict | None) -> tuple[dict, dict]:
        """The candidate evaluated as it is."""
        context = self._context(job)
        trial = self._trial(context, candidate, state)
        score, seconds = timed_evaluation(trial, context)
        return self._answer(trial, Advance([], True, score, seconds, 0.0))


class RemoteTrial:
    """The driver's handle of a candidate trained on Ray: its candidate, units trained, and the
    object reference of its state (None before its first rung)."""

    def __init__(self, candidate: Candidate, state_ref=None, epochs_trained: int = 0):
        self.candidate = candidate
        self.state_ref = state_ref
        self.epochs_trained = epochs_trained

    def snapshot(self):
        """The candidate's model (the ``"model"`` of its exported state, fetched from the object
        store)."""
        import ray

        return ray.get(self.state_ref)["model"]

    def __repr__(self) -> str:
        return f"RemoteTrial({self.candidate.text}, epochs_trained={self.epochs_trained})"


class RayExecutor:
    """Trains successive halving's candidates on Ray actors (see the module docstring).

    Args:
        address: where Ray is (``""``: a private local instance; ``auto``; ``host:port``).
        workers: actors in the pool; 0 = one per GPU of the cluster, else one per
            ``cpus_per_worker`` CPUs.
        cpus_per_worker: CPUs each actor reserves and torch threads it runs.
        use_gpu: None = one GPU per worker when the cluster has GPUs; False = CPUs only.

    Raises:
        TrailsError: ray is missing, the cluster cannot be reached, or the workers could not
            start within ``WORKER_START_S`` (e.g. more GPUs asked than the cluster has).
    """

    name = "ray"

    def __init__(self, address: str = "", workers: int = 0, cpus_per_worker: int = 1, use_gpu=None):
        if int(workers) < 0 or int(cpus_per_worker) < 1:
            raise TrailsError(f"ray_workers is {workers} and ray_cpus_per_worker {cpus_per_worker}, but they must "
                              "be ray_workers >= 0 (0: one per GPU, else one per ray_cpus_per_worker CPUs) and "
                              "ray_cpus_per_worker >= 1")
        ray = import_ray(address)
        connect(address)
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        self.use_gpu = gpus > 0 if use_gpu is None else bool(use_gpu)
        cpus_per_worker = max(1, int(cpus_per_worker))
        count = int(workers) or (gpus if self.use_gpu else max(1, cpus // cpus_per_worker))
        # threaded (a stop runs beside the training); restarted when its process dies (the job
        # then fails: a task retried on the restarted worker finds no job data), and a call made
        # while it restarts waits for it (the next job's load) instead of failing at once
        actor = ray.remote(max_concurrency=2, max_restarts=-1, max_task_retries=TASK_RETRIES)(RungWorker).options(
            num_cpus=cpus_per_worker, num_gpus=1 if self.use_gpu else 0)
        self.actors = [actor.remote(cpus_per_worker, self.use_gpu) for _ in range(count)]
        ready, pending = ray.wait([a.describe.remote() for a in self.actors], num_returns=count,
                                  timeout=WORKER_START_S)
        if pending:
            self.close()
            raise TrailsError(f"only {len(ready)} of {count} Ray workers started within {WORKER_START_S:.0f} s "
                              f"(each needs {cpus_per_worker} CPU{'s' if cpus_per_worker > 1 else ''}"
                              f"{' and 1 GPU' if self.use_gpu else ''}; the cluster has {cpus} CPUs, {gpus} GPUs)",
                              hint="lower [service] ray_workers or ray_cpus_per_worker, or add nodes")
        self.devices = ray.get(ready)
        self.address = address or "local"
        self._job: str | None = None

    @property
    def workers(self) -> int:
        return len(self.actors)

    def device_name(self, device: torch.device) -> str:
        """The device the candidates trained on (the workers', not the driver's)."""
        return "cuda" if self.use_gpu else "cpu"

    def describe(self, device: torch.device | None = None) -> dict:
        """What ``/healthz`` shows (the workers' devices, whatever the service's ``device``)."""
        return {"executor": self.name, "ray_address": self.address, "workers": self.workers,
                "devices": list(self.devices)}

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    # -- the executor protocol of successive_halving

    def prepare(self, context: HalvingContext) -> None:
        """Ship the job's data to the object store once and have every worker load it."""
        import ray

        self._job = uuid.uuid4().hex
        self._context = context
        train_ref = ray.put(_split_arrays(context.train_data.complete()))  # a streamed split: all of it
        decision_ref = ray.put(_split_arrays(context.decision_data))
        spec = {"n_ids": context.n_ids, "n_fields": context.n_fields, "settings": context.settings,
                "seed": context.seed, "task": context.task, "max_units": context.max_units,
                "final_rows": context.final_rows, "starts": context.starts}
        self._wait([a.load.remote(self._job, train_ref, decision_ref, spec) for a in self.actors], context)

    def release(self, context: HalvingContext) -> None:
        """Free the job's data on every worker and stop its tasks still running (after an error
        or a cancel); a worker that is gone or restarting has nothing to free."""
        import ray

        if self._job is not None:
            for actor in self.actors:  # not waited for: a restarting worker holds nothing to free
                with contextlib.suppress(ray.exceptions.RayError):
                    actor.release.remote(self._job)
            self._job = None

    def fresh(self, candidate: Candidate, context: HalvingContext) -> RemoteTrial:
        return RemoteTrial(candidate)

    def train_rung(self, survivors: list, rung_index: int, rung: Rung, context: HalvingContext,
                   book: RungBook) -> list[tuple[float, int, RemoteTrial]]:
        """Each survivor trained to the rung's epochs on the next free worker; returns
        ``(valid score, position, handle)`` of those evaluated. Once the deadline has passed and
        a model was evaluated, no further candidate is started
        (:meth:`~trails.refinement.book.RungBook.stop_for_deadline`)."""
        waiting = list(enumerate(survivors))
        idle = list(self.actors)
        running: dict = {}  # info ref → (position, handle, state ref, actor)
        finished: list[tuple[int, RemoteTrial, Advance]] = []
        self._dispatch(waiting, idle, running, finished, rung, context, book, book.anything_evaluated)
        # recorded in the candidates' order, whatever order the workers finished in: ties in
        # valid score go to the earlier candidate, as with the local executor
        evaluated = []
        for position, handle, step in sorted(finished, key=lambda item: item[0]):
            result = book.record_step(handle, rung_index, step)
            evaluated.append((result.valid_score, position, handle))
        return evaluated

    def _dispatch(self, waiting: list, idle: list, running: dict, finished: list, rung: Rung,
                  context: HalvingContext, book: RungBook, any_evaluated: bool) -> None:
        """Send candidates to free workers until the rung is done (see :meth:`train_rung`)."""
        import ray

        while waiting or running:
            while waiting and idle and not book.deadline_hit:
                if book.stop_for_deadline(context.deadline, any_evaluated):
                    break
                position, entry = waiting.pop(0)
                handle = RemoteTrial(entry) if isinstance(entry, Candidate) else entry
                actor = idle.pop(0)
                info_ref, state_ref = actor.advance.options(num_returns=2).remote(
                    self._job, handle.candidate.text, handle.state_ref, rung.total_epochs,
                    _seconds_left(context.deadline), not any_evaluated)
                running[info_ref] = (position, handle, state_ref, actor)
            if book.deadline_hit and not running:
                break
            if not running:
                continue
            for info_ref in self._wait(list(running), context, first=True):
                position, handle, state_ref, actor = running.pop(info_ref)
                idle.append(actor)
                info = ray.get(info_ref)
                step: Advance = info["step"]
                handle.state_ref, handle.epochs_trained = state_ref, info["epochs_trained"]
                book.account(step)
                if step.valid_score is not None:
                    finished.append((position, handle, step))
                    any_evaluated = True

    def finish(self, handle: RemoteTrial, context: HalvingContext, book: RungBook) -> None:
        """The finishing phase of ``handle`` (the leader, a runner-up or a fresh one) on one worker."""
        info, state_ref = self._call("finish", handle, context, _seconds_left(context.deadline), book.evaluation_s)
        handle.state_ref, handle.epochs_trained = state_ref, info["epochs_trained"]  # a probe may have trained it
        book.record_finish(handle, info["step"])

    def evaluate_as_is(self, handle: RemoteTrial, context: HalvingContext, book: RungBook) -> None:
        info, state_ref = self._call("evaluate", handle, context)
        handle.state_ref, handle.epochs_trained = state_ref, info["epochs_trained"]
        book.record_as_is(handle, info["step"])

    # -- plumbing

    def _call(self, method: str, handle: RemoteTrial, context: HalvingContext, *args) -> tuple:
        """One task on the first worker: (info, state ref)."""
        import ray

        info_ref, state_ref = getattr(self.actors[0], method).options(num_returns=2).remote(
            self._job, handle.candidate.text, handle.state_ref, *args)
        self._wait([info_ref], context)
        return ray.get(info_ref), state_ref

    def _wait(self, refs: list, context: HalvingContext, first: bool = False) -> list:
        """Wait for ``refs`` (all of them, or the first to finish when ``first``), checking for a
        cancel every ``POLL_S``; a task's TrailsError or Cancelled is raised here as itself, a
        dead worker as a TrailsError."""
        import ray

        pending = list(refs)
        done: list = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1 if first else len(pending), timeout=POLL_S)
            for ref in ready:
                _raise_task_error(ray, ref)
            done.extend(ready)
            if first and done:
                return done
            if context.should_stop is not None and context.should_stop():
                for actor in self.actors:
                    actor.stop.remote(self._job)
                raise Cancelled("successive halving was cancelled")
        return done


def _raise_task_error(ray, ref) -> None:
    """Raise what the task behind ``ref`` raised, as the driver's own exception type."""
    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, (TrailsError, Cancelled)):
            raise cause from None
        raise TrailsError(f"a Ray worker failed: {type(cause).__name__ if cause else 'error'}: "
                          f"{str(cause or error).strip().splitlines()[-1]}",
                          hint="the Ray worker's log has the traceback") from None
    except ray.exceptions.RayError as error:  # the actor died or is restarting, the node is gone
        raise TrailsError(f"a Ray worker died during training ({type(error).__name__}): "
                          f"{(str(error).strip().splitlines() or [''])[0]}",
                          hint="see the Ray cluster's logs (out of memory?); Ray restarts the worker for "
                               "the next job") from None


def _seconds_left(deadline) -> float | None:
    """Seconds a task may use before ``deadline`` (this process's monotonic clock), less the
    round trip."""
    return None if deadline is None else max(0.0, deadline - time.monotonic() - ROUND_TRIP_S)
