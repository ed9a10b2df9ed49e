"""The MLP's finishing phase: the best candidate trains on until the deadline, annealed
(:meth:`trails.families.mlp.MlpFamily.finish`; every family has its own).

With ``successive_halving(finish=True)`` (what ``model_selection`` runs) the candidates train at
a constant learning rate during the rungs; the winner then trains on for exactly the iterations
that fit before the deadline at its own measured speed, its learning rate decaying by a cosine
to 0 over them (:meth:`~trails.refinement.trainer.Trial.anneal`), so the returned model is
annealed and no time is left idle.

**The best-validated weights are returned** (``[refinement] keep_best``, on by default). When
the winner trains for at least
:data:`MIN_WATCHED_EPOCHS` epochs here, each complete epoch is evaluated on the decision sample
(the time those evaluations take is kept out of the iterations) and the best weights are kept;
if the last epoch's model scores below them, the best is restored (early stopping without
stopping: annealing usually makes the last the best, a table the model overfits does not).
Choices use valid rows only.

**Schedule.** By default the rate decays by a cosine (above). A winner whose recipe sets
``plateau = N`` (``TrainingSettings.plateau``) holds its rate instead and, after N evaluated
epochs without a better valid score, goes back to its best weights and divides the rate by
:data:`PLATEAU_FACTOR` (:class:`Plateau`: the step-down schedule of the BARS recipe, with a
restore of the best weights at each step), and over the last :data:`PLATEAU_ANNEALED` of its
iterations decays by the cosine to 0 (a model still improving ends annealed); it needs evaluated
epochs, so a phase too short to watch anneals by the cosine only.
"""

from __future__ import annotations

import time

from trails.refinement.steps import CONSTANT_LEARNING_RATE, Advance, HalvingContext, timed_evaluation
from trails.refinement.trainer import Trial, iterations_per_epoch, train

__all__ = ["CONSTANT_LEARNING_RATE", "FINISH_EVALUATION_MARGIN", "PLATEAU_ANNEALED", "PLATEAU_FACTOR",
           "SPEED_PROBE_S", "Plateau",
           "finish_trial"]

# Time kept for the final evaluation: this many times the longest evaluation measured.
FINISH_EVALUATION_MARGIN = 1.5
# Seconds a candidate that no rung has trained yet is timed for before its finishing phase.
SPEED_PROBE_S = 0.3
# A training step over a row costs about this many forward passes over it.
STEP_COST_IN_FORWARD_PASSES = 3
# The fewest epochs of a finishing phase for which each epoch is evaluated and the best kept.
MIN_WATCHED_EPOCHS = 2
# The plateau schedule divides the learning rate by this at each step,
PLATEAU_FACTOR = 10.0
# and anneals it by a cosine over this share of the phase's iterations at the end.
PLATEAU_ANNEALED = 0.25


class Plateau:
    """The step-down schedule: after ``patience`` evaluated epochs in a row without a better
    score (0: never), :meth:`after_epoch` loads the best weights back and divides the rate by
    :data:`PLATEAU_FACTOR`; ``steps`` counts the steps taken. Given ``end`` (the trial's
    iteration count when the phase ends), the last :data:`PLATEAU_ANNEALED` of the iterations
    from the first epoch on or after ``anneal_from`` decay by a cosine to 0 instead
    (:meth:`~trails.refinement.trainer.Trial.anneal`): steps settle a model that stopped
    improving, the final decay ends one that still improves annealed."""

    def __init__(self, patience: int, anneal_from: int | None = None, end: int | None = None):
        self.patience, self.stale, self.steps = int(patience), 0, 0
        self.anneal_from, self.end, self.annealing = anneal_from, end, False

    @classmethod
    def over(cls, patience: int, start: int, iterations: int, per_epoch: int) -> "Plateau":
        """The schedule of a phase of ``iterations`` iterations (``per_epoch`` an epoch) from the
        trial's ``start``: the final decay starts at the last epoch boundary before its last
        :data:`PLATEAU_ANNEALED` (a short phase still ends annealed). Patience 0: no steps and
        no decay of its own (the phase's cosine runs untouched)."""
        if not patience:
            return cls(0)
        return cls(patience, start + int((1 - PLATEAU_ANNEALED) * iterations) - int(per_epoch) + 1,
                   start + iterations)

    def after_epoch(self, trial: Trial, improved: bool, best: dict | None) -> bool:
        """Record one evaluated epoch (``improved``: it scored better than every earlier one;
        ``best``: the best weights so far); True when it stepped down."""
        self.stale = 0 if improved else self.stale + 1
        if self.annealing:
            return False
        if self.anneal_from is not None and trial.iterations >= self.anneal_from:
            trial.anneal(max(1, self.end - trial.iterations))
            self.annealing = True
            return False
        if not self.patience or self.stale < self.patience or best is None:
            return False
        trial.model.load_state_dict(best)
        trial.step_down(1.0 / PLATEAU_FACTOR)
        self.stale, self.steps = 0, self.steps + 1
        return True


class BestWeights:
    """An ``on_epoch`` callback that scores the trial on the decision sample after each epoch
    and keeps a copy of its best weights (``score``, ``snapshot`` after ``epochs`` epochs;
    ``seconds`` spent evaluating); with a ``plateau`` patience it also steps the rate down
    (:class:`Plateau`)."""

    def __init__(self, context: HalvingContext, on_epoch=None, plateau: Plateau | None = None):
        self.context, self.on_epoch, self.plateau = context, on_epoch, plateau or Plateau(0)
        self.score, self.snapshot, self.epochs, self.seconds = None, None, 0, 0.0

    def __call__(self, trial: Trial, loss: float) -> None:
        score, seconds = timed_evaluation(trial, self.context)
        self.seconds += seconds
        improved = self.context.task.better(score, self.score)
        if improved:
            self.score, self.snapshot, self.epochs = score, trial.snapshot(), trial.epochs_trained
        self.plateau.after_epoch(trial, improved, self.snapshot)
        if self.on_epoch is not None:
            self.on_epoch(trial, loss)

    def restore_if_better(self, trial: Trial, score: float) -> float:
        """The score of the model ``trial`` returns: its weights now (``score``), or the best
        kept, loaded into it, when those scored better (``trial.epochs_trained`` then counts the
        epochs that model had: what the stored model and a refit of it report)."""
        if self.snapshot is None or not self.context.task.better(self.score, score):
            return score
        trial.model.load_state_dict(self.snapshot)
        trial.epochs_trained = self.epochs
        return self.score


def _evaluation_estimate(seconds_per_iteration: float, batch_size: int, rows: int) -> float:
    """Seconds to evaluate ``rows`` rows, estimated from the training speed."""
    return seconds_per_iteration / STEP_COST_IN_FORWARD_PASSES * rows / batch_size


def _probe_speed(trial: Trial, context: HalvingContext, deadline: float, on_epoch) -> float | None:
    """Seconds per iteration of ``trial``, timed on at most ``SPEED_PROBE_S`` of training;
    None when not one iteration fitted."""
    settings = trial.settings  # the run's, with the candidate's recipe
    seconds_before, iterations_before = trial.train_seconds, trial.iterations
    train(trial, context.train_data, 1, settings.batch_size, settings.iter_per_epoch,
          deadline=min(deadline, time.monotonic() + SPEED_PROBE_S), should_stop=context.should_stop,
          on_epoch=on_epoch)
    if trial.iterations == iterations_before:
        return None
    return (trial.train_seconds - seconds_before) / (trial.iterations - iterations_before)


def finish_trial(trial: Trial, context: HalvingContext, deadline: float, evaluation_s: float,
                 on_epoch=None) -> Advance | None:
    """The finishing phase of one trial: it trains on until ``deadline`` (``time.monotonic()``).

    Its iterations are those that fit before the deadline at its own measured speed, keeping
    the evaluations (with a margin: ``evaluation_s`` is the longest evaluation of the decision
    sample so far, and the whole valid split follows when ``context.final_rows``) for the end;
    its learning rate decays by a cosine from where it is to 0 over exactly those iterations
    (:meth:`Trial.anneal`; the last epoch may be cut short by the deadline, at a rate near 0), or
    is held and stepped down on plateaus (``settings.plateau``, :class:`Plateau`).
    The model is then evaluated, and the best-validated weights of its epochs are restored when
    they scored better (:class:`BestWeights`; the module docstring). None when not one iteration
    fits (the timing probe of a fresh candidate may have trained it a little; it is not
    evaluated then).
    """
    settings, train_data, valid_data = trial.settings, context.train_data, context.decision_data
    per_epoch = iterations_per_epoch(len(train_data), settings.batch_size, settings.iter_per_epoch)
    seconds_per_iteration = trial.seconds_per_iteration
    # a fresh candidate, or one timed while the train split is still being read (the reader
    # competes for the CPU): time a few iterations now
    if not seconds_per_iteration or train_data.still_reading:
        seconds_per_iteration = _probe_speed(trial, context, deadline, on_epoch)
        if seconds_per_iteration is None:
            return None
    sample_s = max(evaluation_s, _evaluation_estimate(seconds_per_iteration, settings.batch_size, len(valid_data)))
    keep_s = FINISH_EVALUATION_MARGIN * (sample_s + sample_s * context.final_rows / len(valid_data))
    left_s = deadline - time.monotonic() - keep_s
    iterations = int(left_s / seconds_per_iteration)
    watch = settings.keep_best and iterations >= MIN_WATCHED_EPOCHS * per_epoch
    if watch:  # an evaluation after each epoch: fewer iterations fit
        iterations = int(left_s / (seconds_per_iteration + sample_s / per_epoch))
    if iterations < 1:
        return None
    epochs = -(-iterations // per_epoch)  # the last one may be cut by the deadline
    started = time.monotonic()
    plateau = (settings.plateau or 0) if watch else 0  # its steps need evaluated epochs
    if not plateau:
        trial.anneal(iterations)
    best = BestWeights(context, on_epoch, Plateau.over(plateau, trial.iterations, iterations, per_epoch)) if watch else None
    losses = train(trial, train_data, epochs, settings.batch_size, settings.iter_per_epoch,
                   deadline=deadline - keep_s, should_stop=context.should_stop, on_epoch=best or on_epoch)
    score, seconds = timed_evaluation(trial, context)
    if best is not None:
        score = best.restore_if_better(trial, score)
    return Advance(losses, False, score, seconds, time.monotonic() - started)
