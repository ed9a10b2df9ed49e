"""The finishing phase of a trees candidate: more rounds until the deadline, early-stopped.

The race's winner keeps boosting on the train split, watching its loss on the decision sample
(``context.decision_data``; :mod:`trails.families.gbdt_training` keeps the best round), until
it is converged (:data:`~trails.families.gbdt_training.EARLY_STOPPING_PATIENCE` rounds without
a better loss, counted across its rungs too) or the deadline minus the time kept for the final
evaluation; it then rolls back to its best round (``Booster.rollback_one_iter``) and is
evaluated with the task's metric.

The rows predicted after the race (the whole valid split, the test split) are kept time for
too (:func:`~trails.families.gbdt_training.prediction_reserve`). Time kept for the evaluation
mirrors :func:`~trails.refinement.finishing.finish_trial`:
:data:`~trails.refinement.finishing.FINISH_EVALUATION_MARGIN` times the longest evaluation so
far (``evaluation_s``), plus the whole valid split's share when ``context.final_rows``; it grows
with the model, since a prediction's cost grows with its trees.
"""

from __future__ import annotations

import time

from trails.families.gbdt_model import evaluate
from trails.families.gbdt_training import GbdtTrainable, close_unit, prediction_reserve, run_round
from trails.refinement.finishing import FINISH_EVALUATION_MARGIN
from trails.refinement.steps import Advance, HalvingContext
from trails.refinement.trainer import Cancelled


def _evaluation_reserve(evaluation_s: float, context: HalvingContext, growth: float) -> float:
    """Seconds kept for the final evaluation(s) of a model ``growth`` times as large as the one
    ``evaluation_s`` was measured on."""
    final_share = context.final_rows / max(1, len(context.decision_data))
    return FINISH_EVALUATION_MARGIN * evaluation_s * max(1.0, growth) * (1.0 + final_share)


def _check_cancel(trainable: GbdtTrainable, context: HalvingContext) -> None:
    if context.should_stop is not None and context.should_stop():
        raise Cancelled(f"training of {trainable.candidate.text} was cancelled")


def finish_trainable(trainable: GbdtTrainable, context: HalvingContext, deadline: float, evaluation_s: float,
                     on_epoch=None) -> Advance | None:
    """The finishing phase of ``trainable`` (see the module docstring) until ``deadline``
    (``time.monotonic()``); ``evaluation_s`` is the longest evaluation of the decision sample
    so far.

    Returns:
        ``Advance(losses of the complete units, False, score, evaluation seconds, seconds)``,
        the model at its best round; None when not one round fits before the deadline.

    Raises:
        Cancelled: when ``context.should_stop()`` returned true.
    """
    started = time.monotonic()
    per_round = trainable.seconds_per_round or 0.0
    if started + per_round + _evaluation_reserve(evaluation_s, context, 1.0) >= deadline:
        return None
    train_data, watch = context.train_data, context.decision_data
    rounds, losses = 0, []
    if trainable.booster is None:  # a candidate no rung trained, or one rebuilt from its state
        _check_cancel(trainable, context)
        run_round(trainable, train_data, watch)
        rounds = 1
    # the longest evaluation so far was of a model of a rung's rounds at least: a fresh
    # candidate's evaluation grows past it only once it has more trees than that
    start_trees = max(1, trainable.booster.current_iteration(), trainable.settings.rounds_per_unit)
    finish_started, timed_rounds = time.monotonic(), 0
    while not (trainable.exhausted or trainable.converged):
        per_round = ((time.monotonic() - finish_started) / timed_rounds if timed_rounds
                     else trainable.seconds_per_round or 0.0)
        growth = (trainable.booster.current_iteration() + 1) / start_trees
        keep = _evaluation_reserve(evaluation_s, context, growth) + prediction_reserve(trainable)
        if time.monotonic() + per_round + keep >= deadline:
            break
        _check_cancel(trainable, context)
        run_round(trainable, train_data, watch)
        rounds, timed_rounds = rounds + 1, timed_rounds + 1
        if rounds % trainable.settings.rounds_per_unit == 0:
            losses.append(close_unit(trainable, on_epoch))
    if trainable.watched and trainable.best_iteration is not None:
        for _ in range(trainable.booster.current_iteration() - trainable.best_iteration):
            trainable.booster.rollback_one_iter()
    evaluated = time.monotonic()
    score = evaluate(trainable.model, context.decision_data, context.task)
    return Advance(losses, False, score, time.monotonic() - evaluated, time.monotonic() - started)
