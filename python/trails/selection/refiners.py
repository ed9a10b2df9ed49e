"""Where successive halving runs: one :class:`Refiner` interface, three places.

* :class:`BackendRefiner` — in this backend, on the CPU: it reads train and valid through
  SPI before profiling (so t2 and the cost model are measured on the machine that trains),
* :class:`ServiceRefiner` — on the refinement service (GPU when it has one), which reads the
  caller's tables itself,
* :class:`AutoRefiner` — the service, and the backend with what is left when the service
  fails, stops answering or keeps the job queued.

:func:`choose_refiner` picks one for ``refinement => 'auto' | 'service' | 'backend'``. The call
never branches on where training runs: it asks its refiner to preload, for its reading
costs, and to refine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from trails.config import load_config
from trails.coordinator import Plan
from trails.data.dataset import table_identity
from trails.data.session import Session
from trails.errors import TrailsError
from trails.families import Candidate, parse_candidate
from trails.refinement.client import RefinementClient, ServiceFailed, ServiceUnavailable
from trails.refinement.data import SplitTensors, load_split, require_fits
from trails.refinement.halving import successive_halving
from trails.refinement.jobs import JobSpec
from trails.refinement.trainer import TrainingSettings, throttled
from trails.selection.budget import SERVICE_READ_ROWS_PER_S
from trails.selection.measure import PROFILE_ROWS
from trails.selection.planning import Rules
from trails.selection.prepare import Problem
from trails.selection.report import Reporter
from trails.selection.request import Hooks

# With refinement => 'auto', a job still queued on the service (behind other callers' jobs)
# after this many seconds, or this share of the time left, is given up: the backend trains.
QUEUE_PATIENCE_S = 5.0
QUEUE_PATIENCE_SHARE = 0.2
# How often the backend's training lets a cancel (pg_cancel_backend, statement_timeout) in
CANCEL_CHECK_S = 0.2


@dataclass(frozen=True)
class RefineTask:
    """What successive halving is asked: the candidates (:class:`~trails.families.base.Candidate`
    values of every family in the race, best first), the plan (U and the rungs), the most units
    a candidate trains in the rungs, the deadline (``time.monotonic()``, None without one), the
    seed, the training settings (a trees unit's rounds included), η, the reserves
    (candidates trained when the winner leaves time: :attr:`entrants.Race.reserves`) and the
    candidates that start from stored weights (a warm start:
    :class:`~trails.families.stored_start.StoredStart`)."""

    candidates: list
    plan: Plan
    rung_epochs: int
    deadline: float | None
    seed: int
    settings: TrainingSettings
    rules: Rules
    reserves: tuple = ()
    starts: tuple = ()


@dataclass
class Refined:
    """The refinement's outcome, wherever it ran.

    Attributes:
        mode: ``"service"`` or ``"backend"``.
        winner: the winning :class:`~trails.families.base.Candidate`; ``valid_score`` its valid
            score (the task's metric).
        weights: its model as ``trails.models.weights`` stores it (its family's ``to_bytes``).
        summary: the run as JSON (:meth:`HalvingResult.to_json`, plus the job's rungs and id
            on the service).
        valid: the valid split when this process holds it (the backend read it), else None.
        service_failed: why the service failed, when the backend took over.
    """

    mode: str
    winner: Candidate
    valid_score: float
    weights: bytes
    summary: dict
    valid: SplitTensors | None = None
    service_failed: str | None = None


class Refiner(Protocol):
    """Where one call's successive halving runs."""

    def preload(self, session: Session, problem: Problem) -> SplitTensors:
        """Read what must be read before profiling; returns the sample training is timed on."""

    def read_costs(self, problem: Problem, load_s: float) -> tuple[float, float]:
        """(seconds to read the test split, seconds of reading still to come before training),
        ``load_s`` being what :meth:`preload` took."""

    def refine(self, session: Session, problem: Problem, task: RefineTask, hooks: Hooks,
               report: Reporter) -> Refined:
        """Run successive halving (and the finishing phase when there is a deadline)."""


class BackendRefiner:
    """Successive halving in this backend, on the CPU, over splits read through SPI."""

    def __init__(self):
        self.train = self.valid = None

    def preload(self, session: Session, problem: Problem) -> SplitTensors:
        """Read train and valid (refused first when ``[refinement] max_table_mb`` is exceeded)."""
        context = problem.context
        require_fits(context.name, problem.rows["train"] + problem.rows["valid"], problem.layout.n_fields,
                     load_config().getint("refinement", "max_table_mb"), "[refinement] max_table_mb")
        self.train = load_split(session, context.dataset, problem.layout, "train", ordered=False)
        self.valid = load_split(session, context.dataset, problem.layout, "valid", ordered=False)
        return SplitTensors(self.train.ids[:PROFILE_ROWS], self.train.values[:PROFILE_ROWS],
                            self.train.labels[:PROFILE_ROWS])

    def read_costs(self, problem: Problem, load_s: float) -> tuple[float, float]:
        read_rate = problem.rows["train"] / max(load_s, 1e-3)  # as measured by preload
        return problem.rows["test"] / read_rate, 0.0

    def refine(self, session: Session, problem: Problem, task: RefineTask, hooks: Hooks,
               report: Reporter) -> Refined:
        if self.train is None:
            self.preload(session, problem)
        metric = problem.task.metric

        def progress(event) -> None:
            if event.result is not None:
                report.rung(event.result.to_json(), metric)

        result = successive_halving(
            task.candidates, self.train, self.valid, problem.layout.n_ids, problem.layout.n_fields,
            u=max(1, task.plan.u), eta=task.rules.eta, max_epochs=task.rung_epochs, settings=task.settings,
            seed=task.seed, device="cpu", deadline=task.deadline,
            should_stop=throttled(lambda: hooks.interrupt() and False, CANCEL_CHECK_S), progress=progress,
            finish=task.deadline is not None, task=problem.task, reserves=task.reserves, starts=task.starts)
        return Refined("backend", result.winner, result.valid_score, result.weights(), result.to_json(),
                       valid=self.valid)


class ServiceRefiner:
    """Successive halving on the refinement service, which reads the caller's tables.

    Args:
        client: the service's client.
        patient: wait for a job queued behind others (``'service'``); else give it up after
            ``QUEUE_PATIENCE_S`` or ``QUEUE_PATIENCE_SHARE`` of the time left (``'auto'``).
    """

    def __init__(self, client: RefinementClient, patient: bool = True):
        self.client = client
        self.patient = patient

    def preload(self, session: Session, problem: Problem) -> SplitTensors:
        """Read only the sample training is timed on (the service reads the splits)."""
        return load_split(session, problem.context.dataset, problem.layout, "train", limit=PROFILE_ROWS,
                          ordered=False)

    def read_costs(self, problem: Problem, load_s: float) -> tuple[float, float]:
        rows = problem.rows
        return rows["test"] / SERVICE_READ_ROWS_PER_S, (rows["train"] + rows["valid"]) / SERVICE_READ_ROWS_PER_S

    def refine(self, session: Session, problem: Problem, task: RefineTask, hooks: Hooks,
               report: Reporter) -> Refined:
        """Raises ServiceUnavailable / ServiceFailed when the job could not be submitted, failed,
        or the service stopped answering or ran past the deadline."""
        spec = job_spec(session, problem, task)
        patience = None if self.patient or task.deadline is None else min(
            QUEUE_PATIENCE_S, QUEUE_PATIENCE_SHARE * (task.deadline - time.monotonic()))
        outcome = self.client.run(
            spec, sleep=hooks.sleep, deadline=task.deadline, queue_patience_s=patience,
            on_submitted=lambda job_id: report.job_submitted(job_id, len(task.candidates), spec.u),
            on_rung=lambda rung: report.rung(rung, problem.task.metric))
        return Refined("service", parse_candidate(outcome.winner), float(outcome.valid_score), outcome.weights,
                       outcome.summary)


def job_spec(session: Session, problem: Problem, task: RefineTask) -> JobSpec:
    """The service's job for ``task``: the caller's database, role and tables (by OID), the
    layout, the candidates and every training setting the model depends on."""
    context, layout = problem.context, problem.layout
    identity = table_identity(session, context.dataset)
    return JobSpec(
        dataset=context.name, label=context.label, layout_id=layout.layout_id,
        database=identity["database"], role=identity["role"], tables=identity["tables"],
        oids=identity["oids"], split_bounds=identity["split_bounds"],
        layout=layout.to_json(),  # this transaction may have just created it: not visible yet
        candidates=tuple(candidate.text for candidate in task.candidates), u=max(1, task.plan.u), eta=task.rules.eta,
        max_epochs=task.rung_epochs,
        deadline_s=None if task.deadline is None else max(0.1, task.deadline - time.monotonic()),
        seed=task.seed, metric=problem.task.metric, finish=task.deadline is not None, settings=task.settings,
        reserves=tuple(candidate.text for candidate in task.reserves),
        starts=tuple(start.to_json() for start in task.starts))


class AutoRefiner:
    """The service first; when it fails, successive halving in the backend with the time left."""

    def __init__(self, service: ServiceRefiner, backend: BackendRefiner):
        self.service, self.backend = service, backend

    def preload(self, session: Session, problem: Problem) -> SplitTensors:
        return self.service.preload(session, problem)

    def read_costs(self, problem: Problem, load_s: float) -> tuple[float, float]:
        return self.service.read_costs(problem, load_s)

    def refine(self, session: Session, problem: Problem, task: RefineTask, hooks: Hooks,
               report: Reporter) -> Refined:
        try:
            return self.service.refine(session, problem, task, hooks, report)
        except (ServiceUnavailable, ServiceFailed) as error:
            report.service_failed(error.message, None if task.deadline is None else task.deadline - time.monotonic())
            refined = self.backend.refine(session, problem, task, hooks, report)
            refined.service_failed = error.message
            return refined


def choose_refiner(refinement: str, report: Reporter) -> Refiner:
    """The refiner for ``refinement`` (``auto``, ``service``, ``backend``): the service's when
    it should and can be used (its ``/healthz`` answers), else the backend's.

    Raises:
        TrailsError: ``refinement => 'service'`` and the service does not answer.
    """
    if refinement == "backend":
        return BackendRefiner()
    client = RefinementClient.from_config()
    try:
        health = client.health()
    except ServiceUnavailable as error:
        if refinement == "service":
            raise TrailsError(f"refinement => 'service', but {error.message}",
                              hint="start it with scripts/start_refinement_service.sh --background, "
                                   "or use refinement => 'auto' to train in the database when it is absent")
        report.no_service(client.base_url)
        return BackendRefiner()
    report.service(client.base_url, health.get("device", "?"))
    if refinement == "service":
        return ServiceRefiner(client, patient=True)
    return AutoRefiner(ServiceRefiner(client, patient=False), BackendRefiner())
