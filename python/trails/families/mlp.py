"""The MLP family: TRAILS' tabular MLP (:mod:`trails.model`) behind :class:`ModelFamily`.

A configuration is an arch, the hidden widths as a tuple (``(64, 128, 64)``, text
``"64-128-64"``, :func:`trails.space.arch_text`), or an arch with the training recipe it trains
with (:mod:`trails.families.mlp_config`, :mod:`trails.refinement.recipe`: ``"64-128-64/drop=0.3,…"``);
the training resource is epochs, trained and resumed by :class:`trails.refinement.trainer.Trial`,
which trains with the run's settings and the configuration's recipe on top. The network is built by
:func:`trails.model.build_model`, stored as its ``state_dict`` (:func:`trails.model.state_to_bytes`)
and exported as ONNX or as a ``torch.export`` program (the ``torch_export`` format; torch
deprecates ``torch.jit``, so TorchScript is not written).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from trails.errors import TrailsError
from trails.families.base import DEFAULT_FAMILY, Candidate
from trails.families.hyper import ModelHyper
from trails.families.mlp_config import arch_and_recipe, config_text, parse_config
from trails.model import TabularMLP, build_model, mlp_parameters, predict_outputs, state_from_bytes, state_to_bytes
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import Trial, TrainingSettings, evaluate, iterations_per_epoch, train
from trails.space import arch_text
from trails.task import BINARY_01, Task

ONNX_OPSET = 17
"""The ONNX opset of an exported graph."""

EXAMPLE_ROWS = 2
"""Rows of the example input an export traces with (the batch dimension stays dynamic)."""

MIN_EXPORT_BATCH = 1
"""The smallest batch a ``torch.export`` program accepts."""


class TaskOutput(nn.Module):
    """A network followed by its task's output: P(positive) ``[B]`` for a binary task, class
    probabilities ``[B, C]`` for a multiclass one, the value ``[B]`` in the label's units for
    regression (what ``trails.predict`` computes, in float32)."""

    def __init__(self, network: nn.Module, task: Task):
        super().__init__()
        self.network = network
        self.kind = task.kind
        self.mean, self.std = float(task.mean), float(task.std)
        self.eval()  # an exporter restores the wrapper's mode after tracing: eval, not train

    def forward(self, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        logits = self.network(ids, values)
        if self.kind == "regression":
            return logits[:, 0] * self.std + self.mean
        probabilities = torch.softmax(logits, dim=1)
        return probabilities[:, 1] if self.kind == "binary" else probabilities


def example_inputs(n_fields: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An encoded batch of :data:`EXAMPLE_ROWS` rows of ``n_fields`` fields (ids 0, values 1)."""
    return (torch.zeros((EXAMPLE_ROWS, n_fields), dtype=torch.int64),
            torch.ones((EXAMPLE_ROWS, n_fields), dtype=torch.float32))


def export_onnx(wrapped: nn.Module, n_fields: int) -> bytes:
    """``wrapped`` as ONNX: opset :data:`ONNX_OPSET`, inputs ``ids`` and ``values``, output
    ``output``, batch dimension dynamic."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's notes on tracing
        torch.onnx.export(wrapped, example_inputs(n_fields), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["ids", "values"], output_names=["output"],
                          dynamic_axes={"ids": {0: "batch"}, "values": {0: "batch"}, "output": {0: "batch"}})
    return buffer.getvalue()


def export_program(wrapped: nn.Module, n_fields: int) -> bytes:
    """``wrapped`` as a ``torch.export`` program (:func:`torch.export.save`), batch dimension
    dynamic; ``torch.export.load(io.BytesIO(data)).module()`` is a module of ``(ids, values)``."""
    batch = torch.export.Dim("batch", min=MIN_EXPORT_BATCH)
    with torch.no_grad():
        program = torch.export.export(wrapped, example_inputs(n_fields), dynamic_shapes=({0: batch}, {0: batch}))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


EXPORTERS: dict[str, Callable[[nn.Module, int], bytes]] = {"onnx": export_onnx, "torch_export": export_program}
"""Export format → writer of a :class:`TaskOutput`."""


class MlpFamily:
    """The MLP family (see the module docstring); configurations are arch tuples, or
    :class:`~trails.families.mlp_config.MlpConfig` for an arch with its own recipe."""

    name = DEFAULT_FAMILY
    resource = "epochs"
    export_formats = tuple(EXPORTERS)
    rescored = True

    def parse_config(self, text: str):
        """The configuration ``text`` names (:func:`~trails.families.mlp_config.parse_config`)."""
        return parse_config(text)

    def config_text(self, config) -> str:
        """``"64-128-64"`` for ``(64, 128, 64)``; ``"64-128-64/drop=0.3,…"`` with a recipe."""
        return config_text(config)

    def build(self, config, hyper: ModelHyper, n_outputs: int, device="cpu") -> TabularMLP:
        """A fresh :class:`~trails.model.TabularMLP` (train mode) from the global torch RNG."""
        arch, _ = arch_and_recipe(config)
        return build_model(arch, hyper.n_ids, hyper.n_fields, hyper.embedding_dim, hyper.batch_norm,
                           device=device, n_outputs=n_outputs)

    def from_bytes(self, config, hyper: ModelHyper, n_outputs: int, data: bytes,
                   device="cpu") -> TabularMLP:
        """The stored network, in eval mode on ``device``.

        Raises:
            RuntimeError: when ``data`` is not the weights of this arch and hyper.
        """
        arch, _ = arch_and_recipe(config)
        return build_model(arch, hyper.n_ids, hyper.n_fields, hyper.embedding_dim, hyper.batch_norm,
                           state=state_from_bytes(data, device), device=device, n_outputs=n_outputs)

    def to_bytes(self, model: nn.Module) -> bytes:
        """The network's ``state_dict`` on the CPU, ``torch.save``'d."""
        return state_to_bytes(model.state_dict())

    def parameter_count(self, config, hyper: ModelHyper, n_outputs: int) -> int:
        """The MLP's parameters (:func:`trails.model.mlp_parameters`; the embedding table is the
        layout's and is not counted)."""
        arch, recipe = arch_and_recipe(config)
        width = recipe.embedding_dim or hyper.embedding_dim
        return mlp_parameters(arch, hyper.n_fields * width, n_outputs, hyper.batch_norm)

    def prediction_seconds(self, units: int, settings: TrainingSettings) -> float:
        """0: an MLP predicts the test split within the budget's own reserve."""
        return 0.0

    def variations(self, config: Sequence[int]) -> list:
        """None: an MLP winner's finishing phase trains it to the deadline, leaving no time."""
        return []

    def max_iterations(self, units: int, n_rows: int, settings: TrainingSettings) -> int:
        """``units`` epochs of :func:`~trails.refinement.trainer.iterations_per_epoch` iterations."""
        return int(units) * iterations_per_epoch(n_rows, settings.batch_size, settings.iter_per_epoch)

    def new_trial(self, config, n_ids: int, n_fields: int, max_iterations: int,
                  settings: TrainingSettings, seed: int = 0, device="cpu", task: Task = BINARY_01) -> Trial:
        """A fresh :class:`~trails.refinement.trainer.Trial` of ``config``'s arch, trained with
        ``settings`` and the configuration's recipe on top."""
        arch, recipe = arch_and_recipe(config)
        own = recipe.apply(settings)
        if own.iter_per_epoch != settings.iter_per_epoch:  # its batch size: the same epochs, other iterations
            max_iterations = max(1, int(max_iterations) * own.iter_per_epoch // settings.iter_per_epoch)
        trial = Trial(arch, n_ids, n_fields, max_iterations, own, seed=seed, device=device, task=task)
        if not recipe.is_default:
            trial.candidate = Candidate(self.name, config)
        return trial

    def resume_trial(self, config, weights: bytes, id_map, n_ids: int, n_fields: int,
                     max_iterations: int, settings: TrainingSettings, seed: int = 0, device="cpu",
                     task: Task = BINARY_01) -> Trial:
        """A :class:`~trails.refinement.trainer.Trial` of ``config`` whose network starts as the
        stored ``weights`` (a fresh optimiser and schedule): embedding rows move where ``id_map``
        sends them, ids it does not reach keep their fresh rows (from ``seed``).

        Raises:
            TrailsError: when ``weights`` are not a network of ``config`` with this embedding
                width, BatchNorm and outputs.
        """
        trial = self.new_trial(config, n_ids, n_fields, max_iterations, settings, seed=seed, device=device, task=task)
        arch, _ = arch_and_recipe(config)
        table = trial.model.embedding.weight.detach().clone()
        try:
            state = state_from_bytes(weights, trial.device)
            id_map.move_rows(state.pop("embedding.weight"), table)
            with torch.no_grad():
                trial.model.embedding.weight.copy_(table)
            missing, unexpected = trial.model.load_state_dict(state, strict=False)
        except Exception as error:  # noqa: BLE001 — any unreadable or misfit state_dict
            raise TrailsError(f"the stored weights are not those of {arch_text(arch)} with these settings",
                              detail=str(error).splitlines()[0]) from None
        if unexpected or [key for key in missing if key != "embedding.weight"]:
            raise TrailsError(f"the stored weights are not those of {arch_text(arch)} with these settings",
                              detail=f"missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(unexpected) or 'none'}")
        return trial

    def trial_from_state(self, state: dict, n_ids: int, n_fields: int, settings: TrainingSettings,
                         device="cpu", task: Task = BINARY_01) -> Trial:
        """:meth:`Trial.from_state <trails.refinement.trainer.Trial.from_state>`."""
        return Trial.from_state(state, n_ids, n_fields, settings, device=device, task=task)

    def train(self, trainable: Trial, data: SplitTensors, units: int, settings: TrainingSettings,
              deadline: float | None = None, should_stop: Callable[[], bool] | None = None,
              on_epoch: Callable[[Trial, float], None] | None = None, watch=None) -> list[float]:
        """:func:`~trails.refinement.trainer.train` for ``units`` epochs with the trial's own
        batch size and iterations per epoch (the run's ``settings`` with its recipe; ``watch``
        is not used: the last weights are the model)."""
        own = trainable.settings
        return train(trainable, data, units, own.batch_size, own.iter_per_epoch, deadline=deadline,
                     should_stop=should_stop, on_epoch=on_epoch)

    def finish(self, trainable: Trial, context, deadline: float, evaluation_s: float,
               on_epoch: Callable[[Trial, float], None] | None = None):
        """:func:`~trails.refinement.finishing.finish_trial`: the winner trains on to the
        deadline, its learning rate annealed over the iterations that fit."""
        from trails.refinement.finishing import finish_trial  # finishing imports the families

        return finish_trial(trainable, context, deadline, evaluation_s, on_epoch)

    def from_snapshot(self, config, snapshot: dict, n_ids: int, n_fields: int,
                      settings: TrainingSettings, task: Task, device="cpu") -> TabularMLP:
        """The network with the weights ``snapshot`` (a ``state_dict``), in eval mode; the
        caller's global torch RNG is left as it was."""
        arch, recipe = arch_and_recipe(config)
        with torch.random.fork_rng(devices=[]):
            return build_model(arch, n_ids, n_fields, recipe.apply(settings).embedding_dim, settings.batch_norm,
                               state=snapshot, device=device, n_outputs=task.n_outputs)

    def snapshot_bytes(self, snapshot: dict) -> bytes:
        """The ``state_dict`` ``torch.save``'d (:func:`~trails.model.state_to_bytes`)."""
        return state_to_bytes(snapshot)

    def model_parameters(self, model: TabularMLP) -> int:
        """The parameters of the network beyond its embedding table (:meth:`parameter_count`
        of its arch)."""
        return sum(p.numel() for p in model.mlp.parameters())

    def evaluate(self, model: nn.Module, data: SplitTensors, task: Task, batch_size: int) -> float:
        """:func:`~trails.refinement.trainer.evaluate`."""
        return evaluate(model, data, task, batch_size)

    def predict(self, model: nn.Module, task: Task, ids, values) -> np.ndarray:
        """:func:`~trails.model.predict_outputs`."""
        return predict_outputs(model, task, ids, values)

    def export(self, model: nn.Module, task: Task, n_fields: int, fmt: str) -> bytes:
        """The network and its task's output (:class:`TaskOutput`) as ``fmt`` bytes.

        Raises:
            TrailsError: for a format this family does not export.
        """
        if fmt not in EXPORTERS:
            raise TrailsError(f"the {self.name} family cannot export {fmt!r}",
                              hint="valid: " + ", ".join(self.export_formats))
        return EXPORTERS[fmt](TaskOutput(model, task), n_fields)


MLP = MlpFamily()
"""The MLP family (registered by :mod:`trails.families`)."""
