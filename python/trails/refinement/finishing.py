"""The MLP's finishing phase: the best candidate trains on until the deadline, annealed
(:meth:`trails.families.mlp.MlpFamily.finish`; every family has its own).

With ``successive_halving(finish=True)`` (what ``model_selection`` runs) the candidates train at
a constant learning rate during the rungs; the winner then trains on for exactly the iterations
that fit before the deadline at its own measured speed, its learning rate decaying by a cosine
to 0 over them (:meth:`~trails.refinement.trainer.Trial.anneal`), so the returned model is
annealed and no time is left idle.
"""

from __future__ import annotations

import time

from trails.refinement.steps import CONSTANT_LEARNING_RATE, Advance, HalvingContext, timed_evaluation
from trails.refinement.trainer import Trial, iterations_per_epoch, train

__all__ = ["CONSTANT_LEARNING_RATE", "FINISH_EVALUATION_MARGIN", "SPEED_PROBE_S", "finish_trial"]

# Time kept for the final evaluation: this many times the longest evaluation measured.
FINISH_EVALUATION_MARGIN = 1.5
# Seconds a candidate that no rung has trained yet is timed for before its finishing phase.
SPEED_PROBE_S = 0.3
# A training step over a row costs about this many forward passes over it.
STEP_COST_IN_FORWARD_PASSES = 3


def _evaluation_estimate(seconds_per_iteration: float, batch_size: int, rows: int) -> float:
    """Seconds to evaluate ``rows`` rows, estimated from the training speed."""
    return seconds_per_iteration / STEP_COST_IN_FORWARD_PASSES * rows / batch_size


def _probe_speed(trial: Trial, context: HalvingContext, deadline: float, on_epoch) -> float | None:
    """Seconds per iteration of ``trial``, timed on at most ``SPEED_PROBE_S`` of training;
    None when not one iteration fitted."""
    settings = context.settings
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
    (:meth:`Trial.anneal`; the last epoch may be cut short by the deadline, at a rate near 0).
    The model is then evaluated. None when not one iteration fits (the timing probe of a fresh
    candidate may have trained it a little; it is not evaluated then).
    """
    settings, train_data, valid_data = context.settings, context.train_data, context.decision_data
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
    iterations = int((deadline - time.monotonic() - keep_s) / seconds_per_iteration)
    if iterations < 1:
        return None
    epochs = -(-iterations // per_epoch)  # the last one may be cut by the deadline
    started = time.monotonic()
    trial.anneal(iterations)
    losses = train(trial, train_data, epochs, settings.batch_size, settings.iter_per_epoch,
                   deadline=deadline - keep_s, should_stop=context.should_stop, on_epoch=on_epoch)
    score, seconds = timed_evaluation(trial, context)
    return Advance(losses, False, score, seconds, time.monotonic() - started)
