"""The finishing phase of a trees candidate: more rounds until the deadline, early-stopped.

The race's winner keeps boosting on the train split while its loss on the decision sample
(``context.decision_data``) improves, stopping at the deadline minus the time kept for the
final evaluation, or after :data:`EARLY_STOPPING_PATIENCE` rounds without a better loss; it then
rolls back to its best round (``Booster.rollback_one_iter``) and is evaluated with the task's
metric. The loss watched is the objective's (log loss, or the squared error of the standardised
target): smooth, and cheap to follow round by round from the valid rows' running raw scores
(each round adds its own trees' predictions; no full prediction per round).

Time kept for the evaluation mirrors :func:`~trails.refinement.finishing.finish_trial`:
:data:`~trails.refinement.finishing.FINISH_EVALUATION_MARGIN` times the longest evaluation so
far (``evaluation_s``, or this model's own first prediction of the sample if longer), plus the
whole valid split's share when ``context.final_rows``; it grows with the model, since a
prediction's cost grows with its trees.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.special import logsumexp

from trails.families.gbdt_features import feature_matrix
from trails.families.gbdt_model import evaluate
from trails.families.gbdt_training import GbdtTrainable, close_unit, run_round
from trails.refinement.finishing import FINISH_EVALUATION_MARGIN
from trails.refinement.steps import Advance, HalvingContext
from trails.refinement.trainer import Cancelled

EARLY_STOPPING_PATIENCE = 50
"""Rounds without a better decision-sample loss after which the finishing phase stops."""


def valid_loss(kind: str, raw: np.ndarray, labels: np.ndarray) -> float:
    """The objective's mean loss of raw scores (``[N]``, or ``[N, C]`` for multiclass) against
    encoded labels: log loss (binary, multiclass) or squared error of the standardised target."""
    if kind == "binary":
        return float(np.mean(np.logaddexp(0.0, raw) - labels * raw))
    if kind == "multiclass":
        return float(np.mean(logsumexp(raw, axis=1) - raw[np.arange(len(raw)), labels.astype(np.int64)]))
    return float(np.mean((raw - labels) ** 2))


class _ValidScores:
    """The decision sample's running raw scores under a training booster."""

    def __init__(self, trainable: GbdtTrainable, data):
        started = time.monotonic()
        self.booster, self.kind = trainable.booster, trainable.task.kind
        self.matrix = feature_matrix(data.ids, data.values, trainable.feature_map)
        self.labels = data.labels.detach().cpu().numpy().astype(np.float64)
        self.threads = torch.get_num_threads()
        self.raw = self._predict(0, -1)
        self.iterations = self.booster.current_iteration()
        self.prediction_s = time.monotonic() - started  # one prediction of the sample, all trees

    def _predict(self, start: int, count: int) -> np.ndarray:
        return np.asarray(self.booster.predict(self.matrix, start_iteration=start, num_iteration=count,
                                               raw_score=True, num_threads=self.threads), dtype=np.float64)

    def update(self) -> float:
        """Add the trees of the rounds since the last call; returns the loss now."""
        current = self.booster.current_iteration()
        if current > self.iterations:
            self.raw = self.raw + self._predict(self.iterations, current - self.iterations)
            self.iterations = current
        return valid_loss(self.kind, self.raw, self.labels)


def _evaluation_reserve(sample_s: float, context: HalvingContext, growth: float) -> float:
    """Seconds kept for the final evaluation(s) of a model ``growth`` times as large as the one
    ``sample_s`` was measured on."""
    final_share = context.final_rows / max(1, len(context.decision_data))
    return FINISH_EVALUATION_MARGIN * sample_s * max(1.0, growth) * (1.0 + final_share)


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
    rounds, losses = 0, []
    if trainable.booster is None:  # a candidate no rung trained, or one rebuilt from its state
        _check_cancel(trainable, context)
        run_round(trainable, context.train_data)
        rounds = 1
    scores = _ValidScores(trainable, context.decision_data)
    sample_s, start_trees = max(evaluation_s, scores.prediction_s), max(1, scores.iterations)
    best_loss, best_iteration = scores.update(), scores.iterations
    finish_started, timed_rounds = time.monotonic(), 0
    while not (trainable.exhausted or scores.iterations - best_iteration >= EARLY_STOPPING_PATIENCE):
        per_round = ((time.monotonic() - finish_started) / timed_rounds if timed_rounds
                     else trainable.seconds_per_round or 0.0)  # a round and its valid scores
        growth = (scores.iterations + 1) / start_trees
        if time.monotonic() + per_round + _evaluation_reserve(sample_s, context, growth) >= deadline:
            break
        _check_cancel(trainable, context)
        run_round(trainable, context.train_data)
        rounds, timed_rounds = rounds + 1, timed_rounds + 1
        if rounds % trainable.settings.rounds_per_unit == 0:
            losses.append(close_unit(trainable, on_epoch))
        loss = scores.update()
        if loss < best_loss:
            best_loss, best_iteration = loss, scores.iterations
    for _ in range(trainable.booster.current_iteration() - best_iteration):
        trainable.booster.rollback_one_iter()
    evaluated = time.monotonic()
    score = evaluate(trainable.model, context.decision_data, context.task)
    return Advance(losses, False, score, time.monotonic() - evaluated, time.monotonic() - started)
