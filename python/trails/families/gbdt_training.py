"""Training one gradient-boosted trees candidate, resumably: :class:`GbdtTrainable` and
:func:`train_units`.

A trainable keeps its LightGBM training booster alive between calls, so a survivor of a rung
continues with more rounds exactly where it stopped (the same model as one call of all its
rounds). Rounds are run one at a time (``Booster.update``), so the deadline and the cancel
check are looked at between rounds. One unit of the resource is
``settings.rounds_per_unit`` rounds.

Objectives: ``binary`` (log loss), ``multiclass`` with ``num_class`` (multiclass log loss), and
``regression`` (L2) on the standardised target — the losses the MLP trains with. The training
loss reported for a unit is LightGBM's training metric for that loss after the unit's last
round (one pass over LightGBM's running train scores: no prediction).

**Watching** (early stopping inside the race): trained with ``watch`` (the decision sample),
the booster follows that sample's loss — the objective's, from LightGBM's own running scores of
it, so a round costs no prediction — and the trainable keeps its best round
(:attr:`GbdtTrainable.best_iteration`). Its model is the booster's first ``best_iteration``
rounds (later rounds stay in the booster, which trains on), and once
:data:`EARLY_STOPPING_PATIENCE` rounds passed without a better loss it is *converged*: its
further rounds add nothing and cost nothing. So a candidate that a rung trained past its best
round is evaluated, promoted and finished at that round, not at its last.

Determinism: ``seed``, ``deterministic=True`` and column-wise histograms, with
``torch.get_num_threads()`` threads: the same seed and data give the same model on one machine.

A trainable rebuilt from :meth:`GbdtTrainable.export_state` (another process, a Ray worker)
holds the model string only; its next round starts a booster from it (``init_model``) on its own
copy of the train set, binned with the shared one's boundaries. Its row and column subsampling
then draw from ``seed + rounds trained``: deterministic, but not the draws the original
booster would have made.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import lightgbm
import numpy as np
import torch

from trails.errors import TrailsError
from trails.families.base import CANDIDATE_SEED_MASK, Candidate
from trails.families.gbdt_config import GbdtConfig, parse_config, round_nodes, trees_per_round
from trails.families.gbdt_features import FeatureMap, new_dataset, train_dataset, watched_dataset
from trails.families.gbdt_model import GbdtModel, GbdtSnapshot
from trails.families.gbdt_resume import resumed_booster
from trails.refinement.settings import TrainingSettings
from trails.refinement.trainer import Cancelled
from trails.task import BINARY_01, Task

FAMILY_NAME = "gbdt"

OBJECTIVES = {"binary": ("binary", "binary_logloss"), "multiclass": ("multiclass", "multi_logloss"),
              "regression": ("regression", "l2")}
"""Task kind → LightGBM objective and the metric that is its loss."""

EARLY_STOPPING_PATIENCE = 50
"""Rounds without a better loss on the watched sample after which a watched trainable is
converged (LightGBM's customary patience)."""

WATCH_NAME = "decision"


def booster_params(config: GbdtConfig, task: Task, seed: int, num_threads: int) -> dict:
    """The LightGBM parameters of one candidate (the dataset's own are added by LightGBM)."""
    objective, metric = OBJECTIVES[task.kind]
    params = {**config.lightgbm_params(), "objective": objective, "metric": metric, "seed": int(seed),
              "deterministic": True, "force_col_wise": True, "num_threads": int(num_threads), "verbosity": -1}
    if task.kind == "multiclass":
        params["num_class"] = task.n_outputs
    return params


class GbdtTrainable:
    """One tree candidate being trained (see the module docstring).

    Args:
        config: the candidate's configuration.
        n_ids, n_fields: the layout's id count and fields per row.
        settings: :class:`TrainingSettings` (``rounds_per_unit``).
        seed: seeds LightGBM's row and column subsampling.
        task: the objective and the outputs.

    Attributes:
        candidate: ``Candidate("gbdt", config)``.
        epochs_trained: complete units trained (``rounds_per_unit`` rounds each).
        rounds: boosting rounds run so far (a deadline may stop one mid-unit; rounds that could
            not add a tree count too: they were spent).
        train_seconds: wall time of those rounds (binning the shared train set not included).
        epoch_losses: the training loss after each complete unit, first first.
        feature_map: how rows become features, fixed by the first training (None before).
        watched: its booster follows the loss of a watched sample (see the module docstring).
        best_loss, best_iteration: the lowest watched loss so far and the booster's round count
            then (None before a watched round).
    """

    def __init__(self, config: GbdtConfig, n_ids: int, n_fields: int, settings: TrainingSettings,
                 seed: int = 0, task: Task = BINARY_01):
        self.candidate = Candidate(FAMILY_NAME, config)
        self.config, self.n_ids, self.n_fields = config, int(n_ids), int(n_fields)
        self.settings, self.seed, self.task = settings, int(seed), task
        self.feature_map: FeatureMap | None = None
        self.booster: lightgbm.Booster | None = None  # the live training booster
        self.model_string: str | None = None  # what to resume from when no booster is live
        self._loaded: GbdtModel | None = None  # model_string loaded for prediction
        self.epochs_trained, self.rounds, self.train_seconds = 0, 0, 0.0
        self.epoch_losses: list[float] = []
        self.exhausted = False  # the booster can split no further (update() said so)
        self.watched = False
        self.resumed = False  # its booster was resumed from a model string (it cannot start watching)
        self.stored_start = False  # its model string is a stored model's (a warm start), not its own
        self.best_loss: float | None = None
        self.best_iteration: int | None = None
        self.watch_data = None  # the rows watched (the decision sample), once watching
        self.best_predictions: np.ndarray | None = None  # LightGBM's of watch_data at best_iteration

    @property
    def converged(self) -> bool:
        """Watched, and :data:`EARLY_STOPPING_PATIENCE` rounds have passed without a better loss."""
        return (self.watched and self.best_iteration is not None
                and self.booster.current_iteration() - self.best_iteration >= EARLY_STOPPING_PATIENCE)

    @property
    def model(self) -> GbdtModel:
        """The model as it is now (its booster keeps training; :meth:`snapshot` freezes it); a
        model of no trees before any training."""
        if self.booster is not None:
            if not self.watched:
                return GbdtModel(self.booster, self.feature_map)
            known = None if self.best_predictions is None else (self.watch_data, self.best_predictions)
            return GbdtModel(self.booster, self.feature_map, self.best_iteration, known)
        if self.model_string is not None:
            if self._loaded is None:
                self._loaded = GbdtSnapshot(self.model_string, self.feature_map).model()
            return self._loaded
        return GbdtModel(None, self.feature_map or FeatureMap(self.n_ids, (False,) * self.n_fields))

    @property
    def seconds_per_unit(self) -> float | None:
        """Measured training seconds per unit (None before any round)."""
        if not self.rounds:
            return None
        return self.train_seconds / self.rounds * self.settings.rounds_per_unit

    @property
    def seconds_per_round(self) -> float | None:
        """Measured training seconds per round (None before any)."""
        return self.train_seconds / self.rounds if self.rounds else None

    def snapshot(self) -> GbdtSnapshot:
        """An immutable copy of the current model (its model string): what is kept for the
        best evaluation. Further training does not change it.

        Raises:
            TrailsError: before any training (there is no model to keep).
        """
        if self.booster is None and self.model_string is None:
            raise TrailsError(f"{self.candidate.text} has not been trained: no model to keep")
        if self.booster is None:
            return GbdtSnapshot(self.model_string, self.feature_map)
        return self.model.snapshot()

    def state_dict_cpu(self) -> GbdtSnapshot:
        """:meth:`snapshot` (the name the race has used for an MLP's weights)."""
        return self.snapshot()

    def export_state(self) -> dict:
        """Everything needed to continue this trainable elsewhere, as picklable values:
        configuration text, seed, its :meth:`snapshot` as ``"model"`` (None before training),
        feature map, counters and losses. :meth:`from_state` rebuilds it."""
        snapshot = None if self.booster is None and self.model_string is None else self.snapshot()
        return {"family": FAMILY_NAME, "config": self.config.text, "seed": self.seed, "model": snapshot,
                "feature_map": None if self.feature_map is None else self.feature_map.to_json(),
                "epochs_trained": self.epochs_trained, "rounds": self.rounds,
                "train_seconds": self.train_seconds, "epoch_losses": list(self.epoch_losses),
                "exhausted": self.exhausted, "best_loss": self.best_loss}

    @classmethod
    def from_state(cls, state: dict, n_ids: int, n_fields: int, settings: TrainingSettings,
                   task: Task = BINARY_01) -> "GbdtTrainable":
        """The trainable :meth:`export_state` returned ``state`` of (``n_ids``, ``n_fields``,
        ``settings`` and ``task`` must be those it was created with)."""
        trainable = cls(parse_config(state["config"]), n_ids, n_fields, settings, state["seed"], task)
        trainable.model_string = None if state["model"] is None else state["model"].model_string
        if state["feature_map"] is not None:
            trainable.feature_map = FeatureMap.from_json(state["feature_map"])
        trainable.epochs_trained, trainable.rounds = int(state["epochs_trained"]), int(state["rounds"])
        trainable.train_seconds, trainable.epoch_losses = float(state["train_seconds"]), list(state["epoch_losses"])
        trainable.exhausted = bool(state["exhausted"])
        trainable.best_loss = state.get("best_loss")  # its model is the snapshot of that round
        return trainable

    def __repr__(self) -> str:
        return f"GbdtTrainable({self.candidate.text}, epochs_trained={self.epochs_trained}, rounds={self.rounds})"


def _start_booster(trainable: GbdtTrainable, data, num_threads: int, watch=None) -> lightgbm.Booster:
    """The training booster of ``trainable``: a fresh one on the shared train set, or one
    resumed from its model string (after one round, which the caller counts: LightGBM merges
    an init model only while training; :func:`~trails.families.gbdt_resume.resumed_booster`,
    else ``lightgbm.train``); watching ``watch`` when given."""
    feature_map, shared = train_dataset(data, trainable.n_ids, num_threads)
    if trainable.feature_map is not None and trainable.feature_map != feature_map:
        if not trainable.stored_start:
            raise TrailsError(f"{trainable.candidate.text} was trained on rows of another layout",
                              hint="train a candidate on the train split it started on")
        trainable.model_string = None  # stored trees that read these rows' features otherwise: boost afresh
    trainable.feature_map = feature_map
    if trainable.model_string is None:
        params = booster_params(trainable.config, trainable.task, trainable.seed, num_threads)
        trainable.booster = lightgbm.Booster(params, shared)
        if watch is not None:
            _watch(trainable, data, watch)
        return trainable.booster
    params = booster_params(trainable.config, trainable.task, (trainable.seed + trainable.rounds) & CANDIDATE_SEED_MASK,
                            num_threads)  # a 31-bit seed, as every candidate's
    init_model = lightgbm.Booster(model_str=trainable.model_string)
    booster = resumed_booster(init_model, trainable.model_string, params, data.complete(), feature_map, num_threads,
                              shared, watch, WATCH_NAME)
    if booster is None:  # trees the masks cannot express: LightGBM predicts the rows' init scores
        own = new_dataset(data.complete(), feature_map, num_threads, reference=shared)
        # a watched sample of its own too: its init scores are the init model's predictions
        valid_sets = [] if watch is None else [new_dataset(watch, feature_map, num_threads, reference=own)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LightGBM's notes on parameters taken from the init model
            booster = lightgbm.train(params, own, num_boost_round=1, keep_training_booster=True,
                                     init_model=init_model, valid_sets=valid_sets,
                                     valid_names=[WATCH_NAME] * len(valid_sets))
    trainable.model_string, trainable._loaded, trainable.resumed = None, None, True
    if watch is not None:
        trainable.watched, trainable.watch_data, trainable.best_predictions = True, watch, None
        trainable.best_iteration = init_model.current_iteration() if trainable.best_loss is not None else None
    return booster


def training_loss(booster: lightgbm.Booster) -> float:
    """LightGBM's training metric (the objective's loss, :data:`OBJECTIVES`) of the booster now."""
    return float(booster.eval_train()[0][2])


def train_units(trainable: GbdtTrainable, data, units: int, deadline: float | None = None,
                should_stop: Callable[[], bool] | None = None,
                on_epoch: Callable[[GbdtTrainable, float], None] | None = None, watch=None) -> list[float]:
    """Train ``trainable`` ``units`` more units on the train split ``data``, continuing its
    booster.

    Args:
        trainable: the candidate; its booster and counters advance.
        data: the train split (:class:`~trails.refinement.data.SplitTensors`, or a split still
            being read, whose complete rows are waited for); always the same object for one
            trainable: its binned set is shared by every candidate (:func:`train_dataset`).
        units: units to add, ≥ 0 (``settings.rounds_per_unit`` rounds each).
        deadline: a ``time.monotonic()`` value checked before every round; once passed (less
            the :func:`prediction_reserve`), the losses of the complete units are returned (the rounds of the interrupted unit stay
            in the model but the unit is not counted).
        should_stop: checked before every round; when it returns true :class:`Cancelled` is
            raised.
        on_epoch: called as ``on_epoch(trainable, loss)`` after each complete unit.
        watch: valid rows to watch (:class:`~trails.refinement.data.SplitTensors`, the
            decision sample; the same object for every call of one trainable), taken when
            the booster starts; None: not watched.

    Returns:
        The training loss after each complete unit, in order.

    Raises:
        Cancelled: when ``should_stop()`` returned true.
        TrailsError: for an empty split or a negative ``units``.
    """
    if len(data.complete()) == 0:
        raise TrailsError("the train split holds no rows", hint="check the dataset's train table")
    if int(units) < 0:
        raise TrailsError(f"the value of units is {units}, but must be units >= 0")
    rounds_per_unit, losses = trainable.settings.rounds_per_unit, []
    for _ in range(int(units)):
        for _ in range(rounds_per_unit):
            if should_stop is not None and should_stop():
                raise Cancelled(f"training of {trainable.candidate.text} was cancelled")
            if deadline is not None and time.monotonic() + prediction_reserve(trainable) >= deadline:
                return losses
            run_round(trainable, data, watch)
        losses.append(close_unit(trainable, on_epoch))
    return losses


def run_round(trainable: GbdtTrainable, data, watch=None) -> None:
    """One boosting round of ``trainable`` (its booster started or resumed first when needed,
    watching ``watch``), timed into its counters; nothing but the count once it is exhausted
    or converged."""
    if trainable.booster is None:
        threads = torch.get_num_threads()
        train_dataset(data, trainable.n_ids, threads)  # binning the shared set is not the candidate's time
        started = time.monotonic()
        resumed = trainable.model_string is not None
        trainable.booster = _start_booster(trainable, data, threads, watch)
        if resumed:  # lightgbm.train ran this round
            _note_loss(trainable)
            trainable.rounds += 1
            trainable.train_seconds += time.monotonic() - started
            return
        trainable.train_seconds += time.monotonic() - started
    elif watch is not None and not trainable.watched and not trainable.resumed:
        _watch(trainable, data, watch)
    started = time.monotonic()
    if not (trainable.exhausted or trainable.converged):
        trainable.exhausted = at_node_bound(trainable) or bool(trainable.booster.update())
        _note_loss(trainable)
    trainable.rounds += 1
    trainable.train_seconds += time.monotonic() - started


def _watch(trainable: GbdtTrainable, data, watch) -> None:
    """Let the live booster of ``trainable`` (started here on the shared train set of ``data``,
    not resumed from a model string) watch ``watch`` from now on; its best round is then looked
    for from its current one."""
    threads = torch.get_num_threads()
    trainable.booster.add_valid(watched_dataset(watch, data, trainable.n_ids, threads), WATCH_NAME)
    trainable.watched, trainable.watch_data = True, watch
    if trainable.booster.current_iteration():
        _note_loss(trainable)


def _note_loss(trainable: GbdtTrainable) -> None:
    """Keep the watched loss of the booster's last round when it is the best so far, with
    LightGBM's predictions of the watched rows then (:func:`watched_predictions`)."""
    if not trainable.watched:
        return
    loss = float(trainable.booster.eval_valid()[0][2])
    if trainable.best_loss is None or loss < trainable.best_loss:
        trainable.best_loss, trainable.best_iteration = loss, trainable.booster.current_iteration()
        trainable.best_predictions = watched_predictions(trainable.booster)


def watched_predictions(booster: lightgbm.Booster) -> np.ndarray:
    """What ``booster`` predicts now for its watched rows (LightGBM's transformed output, as
    ``Booster.predict`` gives it), from the scores it keeps for them while boosting: no
    prediction over the trees (a large model predicts 50,000 rows in seconds)."""
    kept = []

    def keep(predictions, _dataset):
        kept.append(np.array(predictions, dtype=np.float64))
        return WATCH_NAME, 0.0, False

    booster.eval_valid(feval=keep)
    return kept[0]


PREDICTION_MARGIN = 1.5
"""Times the estimated seconds of the winner's predictions kept before a deadline."""


def prediction_reserve(trainable: GbdtTrainable, more_rounds: int = 1) -> float:
    """Seconds to keep before a deadline so that, after ``more_rounds`` more rounds, predicting
    ``settings.prediction_rows`` rows with the model (the whole valid split and the test split,
    after the race) still fits: :data:`PREDICTION_MARGIN` × ``settings.predict_s`` × trees ×
    rows; 0 when the settings do not say. A large trees model predicts slowly (frappe: 800
    trees of 63 leaves take 8 s for 50,000 rows on 2 cores), so the time a winner's
    predictions take is kept out of its boosting."""
    rounds = (trainable.booster.current_iteration() if trainable.booster is not None else 0) + more_rounds
    return prediction_seconds(rounds * trees_per_round(trainable.task.n_outputs), trainable.settings)


def prediction_seconds(trees: int, settings: TrainingSettings) -> float:
    """:data:`PREDICTION_MARGIN` × ``settings.predict_s`` × ``trees`` ×
    ``settings.prediction_rows``: the time kept for predicting the rows after the race with a
    model of ``trees`` trees; 0 when the settings do not say."""
    if not settings.predict_s or not settings.prediction_rows:
        return 0.0
    return PREDICTION_MARGIN * settings.predict_s * int(trees) * settings.prediction_rows


def at_node_bound(trainable: GbdtTrainable) -> bool:
    """Whether one more round could take the model past ``settings.max_nodes`` (``max_params``):
    its rounds stop there (the model stays as it is, as when no split is left to make)."""
    bound = trainable.settings.max_nodes
    if bound is None:
        return False
    per_round = round_nodes(trainable.candidate.config, trainable.task.n_outputs)
    return (trainable.booster.current_iteration() + 1) * per_round > bound


def close_unit(trainable: GbdtTrainable, on_epoch) -> float:
    """Count one complete unit of ``trainable``; returns its training loss."""
    loss = training_loss(trainable.booster)
    trainable.epoch_losses.append(loss)
    trainable.epochs_trained += 1
    if on_epoch is not None:
        on_epoch(trainable, loss)
    return loss
