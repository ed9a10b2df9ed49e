"""Where successive halving's candidates train: the :class:`Executor` protocol and
:class:`LocalExecutor`.

Successive halving (:mod:`trails.refinement.halving`) decides *which* candidates train, how
long, and which one wins; an executor decides *where* they train — in this process
(:class:`LocalExecutor`), or on Ray workers
(:class:`~trails.refinement.ray_executor.RayExecutor`). An executor runs the steps of
:mod:`trails.refinement.steps` and :mod:`trails.refinement.finishing` and changes the run's
:class:`~trails.refinement.book.RungBook` through its methods only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from trails.families import Candidate, Trainable, get_family
from trails.refinement.book import RungBook, TrialHandle
from trails.refinement.schedule import Rung
from trails.refinement.steps import Advance, HalvingContext, advance_trial, stop_requested, timed_evaluation
from trails.refinement.trainer import Cancelled

__all__ = ["Executor", "LocalExecutor", "device_description"]


def device_description(device: torch.device) -> str:
    """``cpu``, or ``cuda (<the GPU's name>)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


@runtime_checkable
class Executor(Protocol):
    """Where the candidates of successive halving train.

    ``name`` (``"local"``, ``"ray"``) and ``workers`` (candidates it trains at once) describe
    it; a job is ``prepare`` → ``train_rung`` per rung (``finish``, ``evaluate_as_is`` when
    needed) → ``release``, always released; ``close`` ends the executor (the service's
    shutdown). A survivor is handed to the next rung as the handle its rung returned (its
    :class:`~trails.families.base.Candidate` before its first rung).
    """

    name: str

    @property
    def workers(self) -> int:
        """Candidates trained at once."""

    def prepare(self, context: HalvingContext) -> None:
        """Make the job's data available where the candidates train."""

    def release(self, context: HalvingContext) -> None:
        """Free what :meth:`prepare` made (after success, an error or a cancel)."""

    def fresh(self, candidate: Candidate, context: HalvingContext) -> TrialHandle:
        """An untrained candidate's handle."""

    def train_rung(self, survivors: list, rung_index: int, rung: Rung, context: HalvingContext,
                   book: RungBook) -> list[tuple[float, int, TrialHandle]]:
        """Train each survivor (a handle, or a Candidate) to ``rung.total_epochs`` and
        evaluate it; returns ``(valid score, position among survivors, handle)`` of those
        evaluated, recorded in the book in survivor order. Applies the book's deadline rule
        (:meth:`RungBook.stop_for_deadline`) before each candidate."""

    def finish(self, handle: TrialHandle, context: HalvingContext, book: RungBook) -> None:
        """The finishing phase of ``handle`` — the leader, a runner-up, or a fresh handle of a
        candidate trained from scratch in the time left (its family's
        :meth:`~trails.families.base.ModelFamily.finish`), recorded with
        :meth:`RungBook.record_finish`."""

    def evaluate_as_is(self, handle: TrialHandle, context: HalvingContext, book: RungBook) -> None:
        """Evaluate ``handle`` without training it further (:meth:`RungBook.record_as_is`)."""

    def device_name(self, device: torch.device) -> str:
        """The device the candidates trained on, given the caller's ``device``."""

    def describe(self, device: torch.device) -> dict:
        """``executor``, ``workers`` and ``devices`` (one per worker) for ``/healthz``."""

    def close(self) -> None:
        """End the executor: its workers stop."""


class LocalExecutor:
    """Trains the candidates one after the other in this process, on ``context.device`` (the
    default executor). Its handle of a candidate is the trainable itself."""

    name = "local"
    workers = 1

    def prepare(self, context: HalvingContext) -> None:
        """Nothing to ship: the data is already on the device."""

    def release(self, context: HalvingContext) -> None:
        """Nothing to free."""

    def close(self) -> None:
        """Nothing to stop."""

    def fresh(self, candidate: Candidate, context: HalvingContext) -> Trainable:
        return context.new_trial(candidate)

    def device_name(self, device: torch.device) -> str:
        """The device the candidates trained on."""
        return str(device)

    def describe(self, device: torch.device) -> dict:
        return {"executor": self.name, "workers": self.workers, "devices": [device_description(device)]}

    def train_rung(self, survivors: list, rung_index: int, rung: Rung, context: HalvingContext,
                   book: RungBook) -> list[tuple[float, int, Trainable]]:
        """Train each survivor to the rung's epochs and evaluate it, in order; stops between
        candidates once the deadline has passed and some model was evaluated. A candidate whose
        training raises loses (:meth:`RungBook.record_failure`) and the others go on; the error
        is raised when no candidate has been evaluated at all (nothing could train)."""
        evaluated: list[tuple[float, int, Trainable]] = []
        first_error: Exception | None = None
        for position, entry in enumerate(survivors):
            if stop_requested(context.should_stop):
                raise Cancelled("successive halving was cancelled")
            if book.stop_for_deadline(context.deadline):
                break
            candidate = entry if isinstance(entry, Candidate) else entry.candidate
            try:
                trial = context.new_trial(entry) if isinstance(entry, Candidate) else entry
                step = self._advance(trial, rung_index, rung, context, book)
            except Exception as error:  # this candidate cannot train: it loses, the others go on
                if context.is_stop(error):
                    raise
                book.record_failure(candidate, rung_index, error)
                first_error = first_error or error
                continue
            if step.valid_score is not None:
                result = book.record_step(trial, rung_index, step)
                evaluated.append((result.valid_score, position, trial))
            if book.deadline_hit:
                break
        if first_error is not None and not book.anything_evaluated:
            raise first_error  # no candidate of any family could train
        return evaluated

    @staticmethod
    def _advance(trial: Trainable, rung_index: int, rung: Rung, context: HalvingContext,
                 book: RungBook) -> Advance:
        """Train ``trial`` up to the rung's total units (reporting each) and evaluate it,
        unless the deadline stopped it and some model was already evaluated."""
        n_rungs, name = book.n_rungs, trial.candidate.text

        def on_epoch(trial: Trainable, loss: float) -> None:
            book.add_epochs(1)
            book.report(f"rung {rung_index + 1}/{n_rungs}: {name} epoch {trial.epochs_trained}/"
                        f"{rung.total_epochs} loss {loss:.4f}", rung_index)

        step = advance_trial(trial, rung.total_epochs, context, context.deadline,
                             evaluate_interrupted=not book.anything_evaluated, on_epoch=on_epoch)
        book.account(step, epochs_counted=True)
        return step

    def finish(self, trial: Trainable, context: HalvingContext, book: RungBook) -> None:
        """The finishing phase of ``trial`` (the leader, a runner-up or a fresh one), here."""
        name = trial.candidate.text

        def on_epoch(trial: Trainable, loss: float) -> None:
            book.add_epochs(1)
            book.report(f"finishing {name}: epoch {trial.epochs_trained} loss {loss:.4f}", book.n_rungs)

        step = get_family(trial.candidate.family).finish(trial, context, context.deadline, book.evaluation_s,
                                                         on_epoch)
        book.record_finish(trial, step, epochs_counted=True)

    def evaluate_as_is(self, trial: Trainable, context: HalvingContext, book: RungBook) -> None:
        """Evaluate ``trial`` without training it further (and record it)."""
        score, seconds = timed_evaluation(trial, context)
        book.record_as_is(trial, Advance([], True, score, seconds, 0.0))
