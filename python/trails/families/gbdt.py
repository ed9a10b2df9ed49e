"""The gradient-boosted trees family (LightGBM) behind :class:`~trails.families.base.ModelFamily`.

A configuration is a :class:`~trails.families.gbdt_config.GbdtConfig` (text
``leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1``, candidate text ``gbdt:...``); a small
fixed :func:`~trails.families.gbdt_config.portfolio` starts cheap and spreads out. The resource
is boosting rounds, in units of ``settings.rounds_per_unit`` rounds (a rung of ``u`` units
trains ``u × rounds_per_unit`` rounds); a candidate resumes by keeping its booster alive
(:mod:`trails.families.gbdt_training`). Rows are read as a feature matrix of numeric values and
category codes (:mod:`trails.families.gbdt_features`); a model is stored as its LightGBM model
string and feature map (:mod:`trails.families.gbdt_model`), exported as ONNX
(:mod:`trails.families.gbdt_onnx`), and finished by early-stopped boosting until the deadline
(:mod:`trails.families.gbdt_finish`).

Trees train on the CPU whatever ``device`` says (LightGBM's CPU build, ``torch.get_num_threads()``
threads); rows on a GPU are copied to the host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from trails.errors import TrailsError
from trails.families.gbdt_config import GbdtConfig, parse_config, portfolio, round_nodes, variations as nearby
from trails.families.gbdt_model import (GbdtModel, GbdtSnapshot, evaluate, model_to_bytes, predict_outputs,
                                        snapshot_from_bytes, tree_nodes)
from trails.families.gbdt_training import FAMILY_NAME, GbdtTrainable, prediction_seconds, train_units
from trails.families.hyper import ModelHyper
from trails.refinement.settings import TrainingSettings
from trails.serving.tree_format import read_trees_bytes
from trails.task import BINARY_01, Task

__all__ = ["GBDT", "GbdtConfig", "GbdtFamily", "GbdtModel", "GbdtSnapshot", "GbdtTrainable", "portfolio"]

class GbdtFamily:
    """The gradient-boosted trees family (see the module docstring)."""

    name = FAMILY_NAME
    resource = "boosting rounds"
    export_formats = ("onnx",)
    rescored = False

    # -- configurations

    def parse_config(self, text: str) -> GbdtConfig:
        """:func:`~trails.families.gbdt_config.parse_config` (TrailsError with a HINT for a bad text)."""
        return parse_config(text)

    def config_text(self, config: GbdtConfig) -> str:
        """``"leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1"``."""
        return config.text

    def portfolio(self, k: int) -> list[GbdtConfig]:
        """:func:`~trails.families.gbdt_config.portfolio`: the ``k`` most reliable configurations."""
        return portfolio(k)

    # -- models and their size

    def build(self, config: GbdtConfig, hyper: ModelHyper, n_outputs: int, device="cpu") -> GbdtModel:
        """Trees have no untrained model to build (a model is what boosting grew).

        Raises:
            TrailsError: always.
        """
        raise TrailsError(f"the {self.name} family has no untrained model to build",
                          hint="train a candidate (new_trial, then train) to get a trees model")

    def from_bytes(self, config: GbdtConfig, hyper: ModelHyper, n_outputs: int, data: bytes,
                   device="cpu") -> GbdtModel:
        """The model :meth:`to_bytes` stored (:func:`~trails.families.gbdt_model.snapshot_from_bytes`).

        Raises:
            TrailsError: when ``data`` is not a trees model, or one of another layout than ``hyper``'s.
        """
        snapshot = snapshot_from_bytes(data)
        stored = snapshot.feature_map
        if (stored.n_ids, stored.n_fields) != (hyper.n_ids, hyper.n_fields):
            raise TrailsError(f"the stored trees model reads {stored.n_fields} fields of {stored.n_ids} ids, its "
                              f"layout has {hyper.n_fields} of {hyper.n_ids}", hint="store the model again")
        return snapshot.model()

    def to_bytes(self, model: GbdtModel) -> bytes:
        """The model string and feature map (format: :mod:`trails.families.gbdt_model`)."""
        return model_to_bytes(model)

    def from_snapshot(self, config: GbdtConfig, snapshot: GbdtSnapshot, n_ids: int, n_fields: int,
                      settings: TrainingSettings, task: Task, device="cpu") -> GbdtModel:
        """The model a trainable's :meth:`~GbdtTrainable.snapshot` captured, ready to evaluate,
        predict and store."""
        return snapshot.model()

    def snapshot_bytes(self, snapshot: GbdtSnapshot) -> bytes:
        """What ``trails.models.weights`` stores for ``snapshot`` (``to_bytes(from_snapshot(...))``,
        without loading the booster)."""
        return snapshot.to_bytes()

    def parameter_count(self, config: GbdtConfig, hyper: ModelHyper, n_outputs: int) -> int:
        """Nodes of ONE boosting round of ``config`` at most: :func:`round_nodes`. A trees
        model's size is set by how long it trains: ``settings.max_nodes`` (``max_params``)
        stops its rounds before its nodes could pass it."""
        return round_nodes(config, n_outputs)

    def model_parameters(self, model: GbdtModel) -> int:
        """The trained model's size: every tree's nodes (splits + leaves); 0 for no trees."""
        return 0 if model.booster is None else tree_nodes(model.snapshot().model_string)

    # -- training

    def prediction_seconds(self, units: int, settings: TrainingSettings) -> float:
        """:func:`~trails.families.gbdt_training.prediction_seconds` of ``units`` + 1 units of
        rounds (the finishing phase's last rounds may not fill a unit; one tree a round: a
        multiclass model's classes are not counted — the trainable's own reserve counts them)."""
        return prediction_seconds((int(units) + 1) * settings.rounds_per_unit, settings)

    def variations(self, config: GbdtConfig) -> list[GbdtConfig]:
        """:func:`~trails.families.gbdt_config.variations`: half the rate, then more
        regularisation one knob at a time."""
        return nearby(config)

    def max_iterations(self, units: int, n_rows: int, settings: TrainingSettings) -> int:
        """``units × settings.rounds_per_unit`` boosting rounds."""
        return int(units) * settings.rounds_per_unit

    def new_trial(self, config: GbdtConfig, n_ids: int, n_fields: int, max_iterations: int,
                  settings: TrainingSettings, seed: int = 0, device="cpu", task: Task = BINARY_01) -> GbdtTrainable:
        """A fresh :class:`GbdtTrainable` (``max_iterations`` is not used: boosting has no
        learning-rate horizon)."""
        return GbdtTrainable(config, n_ids, n_fields, settings, seed, task)

    def resume_trial(self, config: GbdtConfig, weights: bytes, id_map, n_ids: int, n_fields: int,
                     max_iterations: int, settings: TrainingSettings, seed: int = 0, device="cpu",
                     task: Task = BINARY_01) -> GbdtTrainable:
        """A :class:`GbdtTrainable` whose boosting continues the stored trees (``weights``):
        its features are the stored model's (categories keep their codes; ``id_map`` is not
        needed: missing and unknown ids are NaN wherever they are); trees added later see the
        new values too. When the train split's features turn out to be read otherwise (other
        category offsets: e.g. a model stored before offsets existed) it boosts afresh.

        Raises:
            TrailsError: when ``weights`` are not a trails trees model.
        """
        model_string, feature_map = read_trees_bytes(weights)
        trainable = GbdtTrainable(config, n_ids, n_fields, settings, seed, task)
        trainable.model_string, trainable.stored_start = model_string, True
        trainable.feature_map = dataclasses.replace(feature_map, n_ids=int(n_ids))  # checked when boosting starts
        return trainable

    def trial_from_state(self, state: dict, n_ids: int, n_fields: int, settings: TrainingSettings,
                         device="cpu", task: Task = BINARY_01) -> GbdtTrainable:
        """:meth:`GbdtTrainable.from_state`."""
        return GbdtTrainable.from_state(state, n_ids, n_fields, settings, task)

    def train(self, trainable: GbdtTrainable, data, units: int, settings: TrainingSettings,
              deadline: float | None = None, should_stop: Callable[[], bool] | None = None,
              on_epoch: Callable[[GbdtTrainable, float], None] | None = None, watch=None) -> list[float]:
        """:func:`~trails.families.gbdt_training.train_units` (``units`` of the trainable's
        ``rounds_per_unit`` rounds, watching ``watch``: the model is the best round on it); the
        training loss after each complete unit."""
        return train_units(trainable, data, units, deadline=deadline, should_stop=should_stop, on_epoch=on_epoch,
                           watch=watch)

    def finish(self, trainable: GbdtTrainable, context, deadline: float, evaluation_s: float,
               on_epoch=None):
        """:func:`~trails.families.gbdt_finish.finish_trainable`: boost on until ``deadline``
        with early stopping on ``context.decision_data``; an ``Advance``, or None when not one
        round fits.

        Raises:
            Cancelled: when ``context.should_stop()`` returned true.
        """
        # imported here, not above: trails.refinement.steps (Advance) imports trails.families,
        # whose __init__ imports this module
        from trails.families.gbdt_finish import finish_trainable

        return finish_trainable(trainable, context, deadline, evaluation_s, on_epoch)

    # -- using a model

    def evaluate(self, model: GbdtModel, data, task: Task, batch_size: int) -> float:
        """``task.metric`` over every row of ``data`` (``batch_size`` is not needed: LightGBM
        predicts the whole split at once)."""
        return evaluate(model, data, task)

    def predict(self, model: GbdtModel, task: Task, ids, values) -> np.ndarray:
        """:func:`~trails.families.gbdt_model.predict_outputs`: what an MLP's ``predict``
        returns for the task."""
        return predict_outputs(model, task, ids, values)

    def export(self, model: GbdtModel, task: Task, n_fields: int, fmt: str) -> bytes:
        """The model and its task's output as ``fmt`` bytes (ONNX only).

        Raises:
            TrailsError: for a format this family does not export, or a model of no trees.
        """
        if fmt not in self.export_formats:
            raise TrailsError(f"the {self.name} family cannot export {fmt!r}",
                              hint="valid: " + ", ".join(self.export_formats))
        if model.booster is None:
            raise TrailsError("a trees model of no trees cannot be exported", hint="train the candidate first")
        if int(n_fields) != model.feature_map.n_fields:
            raise TrailsError(f"the trees model reads {model.feature_map.n_fields} fields, not {n_fields}")
        # imported here: onnxmltools takes half a second to import, and only an export needs it
        from trails.families.gbdt_onnx import export_onnx

        return export_onnx(model, task)


GBDT = GbdtFamily()
"""The gradient-boosted trees family (registered by :mod:`trails.families`)."""
