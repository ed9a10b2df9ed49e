"""``trails.refit``: retrain a stored winner on train + valid, as Rafiki's final-train phase.

The arch, the layout and the training settings are the stored model's; the new model trains
from the winner's initialisation (its run's seed and candidate: ``Candidate.seed``) for the epochs the winner had when it was chosen,
its learning rate decaying by a cosine over exactly those epochs, on the train and valid
rows together. The test split is never trained on: the new model's test score is measured
on it and stored with the model (``refit_of`` names the source; there is no valid score,
since valid was trained on). A budget too short for every epoch stops training at its deadline
(a NOTICE says how many epochs were trained).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from trails.data.dataset import resolve_dataset
from trails.data.layout import Layout
from trails.data.session import Session
from trails.errors import TrailsError, is_positive_number, sql_text
from trails.families import ModelHyper
from trails.refinement.data import SplitTensors, load_split
from trails.refinement.settings import RECIPE_SETTINGS
from trails.refinement.trainer import TrainingSettings, throttled
from trails.registry import insert_model, load_model
from trails.selection.outcome import auc_of

# seconds kept back from the budget for reading test, evaluating and storing
REFIT_RESERVE_S = 1.0
# seconds between two checks for a cancel while training
INTERRUPT_CHECK_S = 0.2


def training_settings(hyper: ModelHyper, layout: Layout) -> TrainingSettings:
    """The settings ``hyper`` was trained with: the stored batch size, iterations per epoch,
    learning rate, embedding width, BatchNorm switch, boosting rounds per unit (trees) and the
    MLP's recipe (``hyper.extra["recipe"]``: dropout, weight decay, embedding L2, numeric bins,
    the bins from ``layout``'s quantiles); the configuration's for the rest (and for those an
    old row does not hold: an old MLP embedded its numeric fields linearly)."""
    recipe = dict(hyper.extra.get("recipe") or {})
    recipe.setdefault("numeric_bins", 0)
    settings = TrainingSettings.from_config(batch_size=hyper.batch_size, iter_per_epoch=hyper.iter_per_epoch,
                                            learning_rate=hyper.learning_rate, rounds_per_unit=hyper.rounds_per_unit,
                                            numeric_edges=layout.numeric_edges(),
                                            **{name: recipe.get(name) for name in RECIPE_SETTINGS})
    return dataclasses.replace(settings, embedding_dim=hyper.embedding_dim, batch_norm=hyper.batch_norm)


def refit_model(session: Session, model_id, budget_s, interrupt: Callable[[], None] = lambda: None,
                notice: Callable[[str], None] = lambda message: None) -> dict:
    """Refit ``model_id`` within ``budget_s`` seconds; returns ``{model_id, epochs,
    train_rows, test_score, metric, elapsed_s}`` of the new model. The model's family
    (:mod:`trails.families`) builds, trains, evaluates and stores it.

    Raises:
        TrailsError: for a bad budget or an unknown model, before any training.
    """
    started = time.monotonic()
    if not is_positive_number(budget_s):
        raise TrailsError(f"budget_s must be a positive, finite number of seconds, got {sql_text(budget_s)}",
                          hint="e.g. trails.refit(1, 60)")
    stored = load_model(session, model_id)
    hyper, layout, task, family, candidate = stored.hyper, stored.layout, stored.task, stored.family, stored.candidate
    epochs = int(hyper.epochs or 1)
    dataset = resolve_dataset(session, stored.dataset)
    train_data = load_split(session, dataset, layout, "train", ordered=False)
    valid_data = load_split(session, dataset, layout, "valid", ordered=False)
    both = SplitTensors.concatenate([train_data, valid_data], layout.n_fields)
    interrupt()
    settings = training_settings(hyper, layout)
    trial = family.new_trial(candidate.config, layout.n_ids, layout.n_fields,
                             family.max_iterations(epochs, len(both), settings), settings,
                             seed=candidate.seed(hyper.seed), task=task)
    notice(f"refit of model {model_id} ({stored.arch}): {epochs} epochs on {len(train_data)} train + "
           f"{len(valid_data)} valid rows")
    if "resumed_from" in hyper.extra:
        notice(f"model {model_id} continued model {hyper.extra['resumed_from']}'s weights (a warm start): the refit "
               f"trains its configuration from scratch for the {epochs} epochs it trained after that")
    deadline = started + float(budget_s) - REFIT_RESERVE_S
    losses = family.train(trial, both, epochs, settings, deadline=deadline,
                          should_stop=throttled(lambda: interrupt() and False, INTERRUPT_CHECK_S))
    if trial.epochs_trained == 0:
        raise TrailsError(f"a budget of {budget_s:g} s left no time to train model {model_id}'s arch for one epoch "
                          f"on {len(both)} rows", detail=f"reading train and valid took {time.monotonic() - started:.1f} s",
                          hint="give trails.refit a larger budget_s")
    if len(losses) < epochs:
        notice(f"the budget stopped the refit after {len(losses)} of {epochs} epochs")
    test_data = load_split(session, dataset, layout, "test", ordered=False)
    test_score = family.evaluate(trial.model, test_data, task, settings.eval_batch_size)
    new_hyper = dataclasses.replace(hyper, epochs=trial.epochs_trained, refit_rows=len(both))
    test_auc = auc_of(family, trial.model, test_data, task, test_score, settings.eval_batch_size)
    with session.atomic():
        new_id = insert_model(session, {
            "dataset": stored.dataset, "layout_id": layout.layout_id, "arch": stored.arch, "hyper": new_hyper,
            "weights": family.to_bytes(trial.model), "task": task.kind, "metric": task.metric,
            "params": stored.params, "test_score": test_score, "test_auc": test_auc, "refit_of": int(model_id)})
    return {"model_id": new_id, "epochs": trial.epochs_trained, "train_rows": len(both),
            "test_score": test_score, "metric": task.metric, "elapsed_s": time.monotonic() - started}
