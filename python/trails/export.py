"""Taking a stored model out of the database: its graph (ONNX or TorchScript) and its layout.

The exported graph maps ``ids`` int64 ``[B, F]`` and ``values`` float32 ``[B, F]`` — a row
encoded as :meth:`trails.data.layout.Layout.encode` does, which :func:`model_layout` describes
in full — to the task's output: P(positive) ``[B]`` for a binary model, class probabilities
``[B, C]`` (in ``task.classes`` order) for a multiclass one, the predicted value ``[B]`` for
regression. It computes what ``trails.predict`` computes, in float32.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from trails.data.session import Session
from trails.errors import TrailsError, sql_text
from trails.registry import StoredModel, load_model
from trails.task import Task

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17


class TaskOutput(nn.Module):
    """A stored network followed by its task's output (see the module docstring)."""

    def __init__(self, network: nn.Module, task: Task):
        super().__init__()
        self.network = network.eval()
        self.kind = task.kind
        self.mean, self.std = float(task.mean), float(task.std)

    def forward(self, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        logits = self.network(ids, values)
        if self.kind == "regression":
            return logits[:, 0] * self.std + self.mean
        probabilities = torch.softmax(logits, dim=1)
        return probabilities[:, 1] if self.kind == "binary" else probabilities


def _example(model: StoredModel) -> tuple:
    n_fields = model.layout.n_fields
    return (torch.zeros((2, n_fields), dtype=torch.int64), torch.ones((2, n_fields), dtype=torch.float32))


def export_model(session: Session, model_id, fmt: str = "onnx") -> bytes:
    """The stored model ``model_id`` as ONNX (opset ``ONNX_OPSET``, inputs ``ids`` and
    ``values``, output ``output``, batch dimension dynamic) or TorchScript bytes.

    Raises:
        TrailsError: for an unknown format or model.
    """
    if fmt not in FORMATS:
        raise TrailsError(f"unknown export format {sql_text(fmt)}", hint="valid: " + ", ".join(FORMATS))
    model = load_model(session, model_id)
    wrapped = TaskOutput(model.network, model.task)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            torch.onnx.export(wrapped, _example(model), buffer, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["ids", "values"], output_names=["output"],
                              dynamic_axes={"ids": {0: "batch"}, "values": {0: "batch"}, "output": {0: "batch"}})
        else:
            torch.jit.save(torch.jit.trace(wrapped, _example(model), check_trace=False), buffer)
    return buffer.getvalue()


def model_layout(session: Session, model_id) -> dict:
    """Everything needed to encode rows for the exported graph outside PostgreSQL: the fields
    in input order (kind, SQL type, first id and cardinality, the categorical dictionary, the
    missing and unknown ids, the numeric mean and std), the task and the output's meaning."""
    model = load_model(session, model_id)
    layout, task = model.layout, model.task
    output = {"binary": "P(label = '%s'), float32 [B]" % task.positive,
              "multiclass": "class probabilities, float32 [B, C], classes in task.classes order",
              "regression": "the predicted value of the label, float32 [B]"}[task.kind]
    return {
        "model_id": model.model_id, "dataset": model.dataset, "arch": model.arch, "params": model.params,
        "label": layout.label, "task": task.to_json(), "n_ids": layout.n_ids, "n_fields": layout.n_fields,
        "inputs": {"ids": "int64 [B, n_fields]", "values": "float32 [B, n_fields]"}, "output": output,
        "encoding": "field i (in this order): categorical → ids[:, i] = first_id + position of the value "
                    "(as PostgreSQL's ::text renders it) in values, unknown_id for a value not there, "
                    "missing_id for NULL or ''; values[:, i] = 1. numeric → ids[:, i] = first_id and "
                    "values[:, i] = (x - mean) / std, or missing_id and 1 for NULL, NaN or ±Infinity.",
        "fields": [{"name": f.name, "kind": f.kind, "sql_type": f.sql_type, "first_id": f.first_id,
                    "cardinality": f.cardinality, "missing_id": f.missing_id, "unknown_id": f.unknown_id,
                    **({"values": list(f.values)} if f.kind == "categorical" else {"mean": f.mean, "std": f.std})}
                   for f in layout.fields],
    }
