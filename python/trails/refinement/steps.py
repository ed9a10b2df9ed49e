"""The per-candidate steps of successive halving, wherever a candidate trains.

An executor (:mod:`trails.refinement.executor`, :mod:`trails.refinement.ray_executor`) runs
these on a trainable of any family (:class:`~trails.families.base.Trainable`: an MLP's
:class:`~trails.refinement.trainer.Trial`, a tree ensemble being boosted): in the service's
process, or on a Ray worker. They decide nothing about rungs or promotion
(:mod:`trails.refinement.halving` does); they train, evaluate and say what happened
(:class:`Advance`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from trails.errors import TrailsError
from trails.families import Candidate, Trainable, get_family
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import Cancelled, TrainingSettings
from trails.task import Task

__all__ = ["Advance", "CONSTANT_LEARNING_RATE", "HalvingContext", "StopCheck", "advance_trial",
           "deadline_passed", "stop_requested", "timed_evaluation"]

# The learning-rate horizon (iterations) of candidates that a finishing phase will anneal:
# far beyond any run, so the rate stays at its initial value until then.
CONSTANT_LEARNING_RATE = 10**12


def deadline_passed(deadline: float | None) -> bool:
    """Whether ``deadline`` (a ``time.monotonic()`` value of this process, or None: no
    deadline) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def stop_requested(should_stop: Callable[[], bool] | None) -> bool:
    """Whether the cancel check ``should_stop`` (or None: never) asks to stop."""
    return should_stop is not None and bool(should_stop())


class StopCheck:
    """A run's cancel check (``check``: a callable returning true to stop, or None: never) that
    remembers an exception it raised itself: such an exception is the caller's cancel (e.g. a
    PostgreSQL query cancel raised by the check), never a candidate's failure to train."""

    def __init__(self, check: Callable[[], bool] | None):
        self.check = check
        self.raised: BaseException | None = None

    def __call__(self) -> bool:
        try:
            return self.check is not None and bool(self.check())
        except BaseException as error:
            self.raised = error
            raise


@dataclass
class HalvingContext:
    """What every candidate of one run is trained and evaluated with (built once by
    :func:`~trails.refinement.halving.successive_halving`, handed to the executor).

    Attributes:
        train_data: the train split; ``decision_data`` the valid rows every rung decision is
            taken on (a stratified sample of at most ``settings.decision_valid_rows`` rows).
        n_ids, n_fields, settings, seed, device, task: as successive halving got them.
        max_units: the most units of its resource any candidate trains in the rungs (its
            family's :meth:`~trails.families.base.ModelFamily.max_iterations` of them is an MLP's
            cosine horizon), or None when a finishing phase anneals the winner
            (:data:`CONSTANT_LEARNING_RATE`).
        deadline: a ``time.monotonic()`` value of this process, or None.
        should_stop: the cancel check, or None.
        final_rows: rows of the whole valid split when the winner is evaluated on it afterwards
            (0 when the decision sample is the whole split).
        starts: candidate → :class:`~trails.families.stored_start.StoredStart`: candidates
            that start from stored weights (a warm start) instead of fresh ones.
    """

    train_data: SplitTensors
    decision_data: SplitTensors
    n_ids: int
    n_fields: int
    settings: TrainingSettings
    seed: int
    device: torch.device
    task: Task
    max_units: int | None
    deadline: float | None
    should_stop: Callable[[], bool] | None
    final_rows: int = 0
    starts: dict = field(default_factory=dict)

    def is_stop(self, error: BaseException) -> bool:
        """Whether ``error`` stops the run rather than one candidate: a :class:`Cancelled`, or
        what the cancel check itself raised (:class:`StopCheck`)."""
        return isinstance(error, Cancelled) or (isinstance(self.should_stop, StopCheck)
                                                and self.should_stop.raised is error)

    def new_trial(self, candidate: Candidate) -> Trainable:
        """A fresh trainable of ``candidate``, seeded by :meth:`Candidate.seed` of the run's seed
        (its stored weights when :attr:`starts` has it: ids a fresh layout added start from
        that seed)."""
        family = get_family(candidate.family)
        horizon = (CONSTANT_LEARNING_RATE if self.max_units is None
                   else family.max_iterations(self.max_units, len(self.train_data), self.settings))
        start = self.starts.get(candidate)
        if start is not None:
            try:
                trial = family.resume_trial(candidate.config, start.weights, start.id_map, self.n_ids, self.n_fields,
                                            horizon, self.settings, candidate.seed(self.seed), self.device, self.task)
            except TrailsError:  # weights that do not fit after all: it starts fresh, under its own name
                trial = family.new_trial(candidate.config, self.n_ids, self.n_fields, horizon, self.settings,
                                         candidate.seed(self.seed), self.device, self.task)
            trial.candidate = candidate
            return trial
        return family.new_trial(candidate.config, self.n_ids, self.n_fields, horizon, self.settings,
                                candidate.seed(self.seed), self.device, self.task)

    def trial_from_state(self, candidate: Candidate, state: dict, device) -> Trainable:
        """The trainable of ``candidate`` whose :meth:`~trails.families.base.Trainable.export_state`
        is ``state``, on ``device``."""
        trial = get_family(candidate.family).trial_from_state(state, self.n_ids, self.n_fields, self.settings,
                                                              device, self.task)
        trial.candidate = candidate  # what it races as (an MLP's recipe, a resumed start)
        return trial


@dataclass
class Advance:
    """What one step of a trial did (:func:`advance_trial`,
    :func:`~trails.refinement.finishing.finish_trial`).

    Attributes:
        losses: mean loss of each epoch completed in the step.
        interrupted: the deadline stopped it before its epochs were done.
        valid_score: the metric on the decision sample, or None when it was not evaluated.
        evaluation_s: seconds that evaluation took (0 when none).
        seconds: wall time of the whole step.
    """

    losses: list
    interrupted: bool
    valid_score: float | None
    evaluation_s: float
    seconds: float


def advance_trial(trial: Trainable, total_epochs: int, context: HalvingContext, deadline=None,
                  evaluate_interrupted: bool = True, on_epoch=None) -> Advance:
    """Train ``trial`` up to ``total_epochs`` units of its family's resource (epochs, rounds of
    boosting) and evaluate it on the decision sample;
    when ``deadline`` (``time.monotonic()``) stops it first, it is evaluated only if
    ``evaluate_interrupted``. Runs wherever the trial lives (this process, or a Ray worker).

    Raises:
        Cancelled: when ``context.should_stop()`` returned true.
    """
    started = time.monotonic()
    epochs = total_epochs - trial.epochs_trained
    losses = get_family(trial.candidate.family).train(trial, context.train_data, epochs, context.settings,
                                                      deadline=deadline, should_stop=context.should_stop,
                                                      on_epoch=on_epoch, watch=context.decision_data)
    interrupted = len(losses) < epochs
    score, evaluation_s = None, 0.0
    if not interrupted or evaluate_interrupted:
        score, evaluation_s = timed_evaluation(trial, context)
    return Advance(losses, interrupted, score, evaluation_s, time.monotonic() - started)


def timed_evaluation(trial: Trainable, context: HalvingContext) -> tuple[float, float]:
    """(valid score on the decision sample, seconds it took) of ``trial``'s model."""
    started = time.monotonic()
    score = get_family(trial.candidate.family).evaluate(trial.model, context.decision_data, context.task,
                                                        context.settings.eval_batch_size)
    return score, time.monotonic() - started
