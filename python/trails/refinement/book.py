"""The bookkeeping of one successive-halving run: :class:`RungBook`.

Successive halving (:mod:`trails.refinement.halving`) owns the book; an executor changes it
only through its methods — it records what a step did, counts the epochs, applies the deadline
rule — and reads the rest from read-only properties. The rules are written here once, for every
executor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from trails.refinement.results import Progress, RungResult
from trails.refinement.schedule import Rung
from trails.refinement.steps import Advance, deadline_passed
from trails.task import Task

__all__ = ["RungBook", "TrialHandle"]


class TrialHandle(Protocol):
    """An executor's handle of a candidate: its trainable (the local executor; an MLP's
    :class:`~trails.refinement.trainer.Trial`), or a reference to one trained elsewhere (Ray)."""

    candidate: object  # a trails.families.Candidate
    epochs_trained: int

    def snapshot(self):
        """The candidate's model as it is now (:meth:`~trails.families.base.Trainable.snapshot`)."""


class RungBook:
    """Results, the best evaluation (its weights and handle), epochs trained, the deadline
    flag and progress reports of one run.

    Args:
        schedule: the planned rungs; ``planned``: the epochs they plan.
        progress: called with a :class:`Progress` on every report, or None.
        task: decides which evaluation is better (:meth:`Task.better`).
    """

    def __init__(self, schedule: list[Rung], planned: int, progress: Callable[[Progress], None] | None,
                 task: Task):
        self._schedule = list(schedule)
        self._planned = planned
        self._progress = progress
        self._task = task
        self._results: list[RungResult] = []
        self._best: RungResult | None = None
        self._best_state = None
        self._best_trial: TrialHandle | None = None
        self._trained_epochs = 0
        self._deadline_hit = False
        self._evaluation_s = 0.0  # the longest evaluation of the decision sample so far
        self._finish_epochs = 0
        self._finished_once = False
        self._failures: list[dict] = []

    # -- read-only state

    @property
    def schedule(self) -> list[Rung]:
        return list(self._schedule)

    @property
    def n_rungs(self) -> int:
        return len(self._schedule)

    @property
    def task(self) -> Task:
        return self._task

    @property
    def results(self) -> list[RungResult]:
        """Every evaluation, in the order recorded (a copy)."""
        return list(self._results)

    @property
    def best(self) -> RungResult | None:
        """The best evaluation so far (ties: the earlier one), or None."""
        return self._best

    @property
    def best_state(self):
        """The best candidate's model (a snapshot) when it was evaluated."""
        return self._best_state

    @property
    def best_trial(self) -> TrialHandle | None:
        """The handle of the best candidate."""
        return self._best_trial

    @property
    def anything_evaluated(self) -> bool:
        return self._best is not None

    @property
    def trained_epochs(self) -> int:
        return self._trained_epochs

    @property
    def deadline_hit(self) -> bool:
        return self._deadline_hit

    @property
    def evaluation_s(self) -> float:
        """The longest evaluation of the decision sample so far (seconds)."""
        return self._evaluation_s

    @property
    def failures(self) -> list[dict]:
        """Candidates whose training raised: ``{arch, family, rung, error}`` each (a copy)."""
        return list(self._failures)

    @property
    def finish_epochs(self) -> int:
        """Epochs of the finishing phase (0 before it, or without one)."""
        return self._finish_epochs

    # -- changes

    def report(self, message: str, rung: int, result: RungResult | None = None) -> None:
        """A :class:`Progress` to the ``progress`` callback (fraction of the planned epochs)."""
        if self._progress is not None:
            fraction = min(1.0, self._trained_epochs / self._planned) if self._planned else 0.0
            self._progress(Progress(fraction, message, rung, result))

    def add_epochs(self, count: int = 1) -> None:
        """``count`` more complete epochs trained (any candidate)."""
        self._trained_epochs += int(count)

    def mark_deadline_hit(self) -> None:
        """The deadline stopped the run early."""
        self._deadline_hit = True

    def stop_for_deadline(self, deadline: float | None, evaluated: bool | None = None) -> bool:
        """The deadline rule between two candidates: once ``deadline`` has passed and some model
        was evaluated (``evaluated``; by default whether any evaluation was recorded), no further
        candidate starts. True (and the deadline marked hit) when it applies."""
        evaluated = self.anything_evaluated if evaluated is None else evaluated
        applies = evaluated and deadline_passed(deadline)
        if applies:
            self._deadline_hit = True
        return applies

    def account(self, step: Advance, epochs_counted: bool = False) -> None:
        """What a rung's step did: its epochs (unless already counted one by one with
        :meth:`add_epochs`), and the deadline hit when it stopped the step."""
        if not epochs_counted:
            self.add_epochs(len(step.losses))
        if step.interrupted:
            self._deadline_hit = True

    def record_step(self, trial: TrialHandle, rung_index: int, step: Advance, final: bool = False) -> RungResult:
        """Record the evaluation that ended ``step`` of ``trial`` (rung ``rung_index``; the
        finishing phase when ``final``) and report it; ``trial`` becomes the best when it beats
        every earlier evaluation."""
        self._evaluation_s = max(self._evaluation_s, step.evaluation_s)
        result = RungResult(trial.candidate, rung_index, trial.epochs_trained, step.valid_score, step.seconds,
                            step.losses, step.interrupted, final=final)
        self._results.append(result)
        if self._best is None or self._task.better(result.valid_score, self._best.valid_score):
            self._best, self._best_state, self._best_trial = result, trial.snapshot(), trial
        name, metric, n_rungs = trial.candidate.text, self._task.metric, self.n_rungs
        if final:
            message = f"finished {name}: valid {metric} {result.valid_score:.4f} after {result.total_epochs} epochs"
        else:
            message = (f"rung {rung_index + 1}/{n_rungs}: {name} valid {metric} "
                       f"{result.valid_score:.4f} after {result.total_epochs} epochs")
        self.report(message, n_rungs if final else rung_index, result)
        return result

    def record_failure(self, candidate, rung_index: int, error: BaseException) -> None:
        """``candidate`` (a :class:`~trails.families.base.Candidate`) could not train in rung
        ``rung_index`` (``n_rungs``: in the time the finished winner left): it loses, with
        ``error`` as its reason, and is reported."""
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        self._failures.append({"arch": candidate.text, "family": candidate.family, "rung": rung_index,
                               "error": reason})
        where = "time left" if rung_index >= self.n_rungs else f"rung {rung_index + 1}/{self.n_rungs}"
        self.report(f"{where}: {candidate.text} could not train ({reason}): it loses", rung_index)

    def record_finish(self, trial: TrialHandle, step: Advance | None, epochs_counted: bool = False) -> None:
        """The finishing phase of ``trial`` did ``step`` (None: not one iteration fitted): its
        evaluation is recorded as final, and its epochs are the finish epochs when it is the
        first finishing phase (the leader's) or the best evaluation so far."""
        if step is None:
            return
        if not epochs_counted:
            self.add_epochs(len(step.losses))
        result = self.record_step(trial, self.n_rungs, step, final=True)
        if not self._finished_once or self._best is result:
            self._finish_epochs = len(step.losses)
        self._finished_once = True

    def record_as_is(self, trial: TrialHandle, step: Advance) -> None:
        """``trial`` evaluated without further training (the deadline left no time to train)."""
        self.record_step(trial, 0, step)
