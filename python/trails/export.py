"""Taking a stored model out of the database: its graph (ONNX, or a ``torch.export`` program:
format ``torch_export``) and its layout.

The exported graph maps ``ids`` int64 ``[B, F]`` and ``values`` float32 ``[B, F]`` — a row
encoded as :meth:`trails.data.layout.Layout.encode` does, which :func:`model_layout` describes
in full — to the task's output: P(positive) ``[B]`` for a binary model, class probabilities
``[B, C]`` (in ``task.classes`` order) for a multiclass one, the predicted value ``[B]`` for
regression. It computes what ``trails.predict`` computes, in float32.
"""

from __future__ import annotations

from trails.data.session import Session
from trails.errors import TrailsError, sql_text
from trails.registry import load_model

FORMATS = ("onnx", "torch_export")
"""Every export format; a model's family writes those in its ``export_formats``."""
# torch 2.13 deprecates all of torch.jit (trace, save, load): TorchScript is no longer written
RETIRED_FORMATS = {"torchscript": "torch_export"}


def export_model(session: Session, model_id, fmt: str = "onnx") -> bytes:
    """The stored model ``model_id`` as a graph, written by its family
    (:meth:`trails.families.base.ModelFamily.export`):

    * ``onnx``: ONNX (opset :data:`trails.families.mlp.ONNX_OPSET` for an MLP), inputs ``ids``
      and ``values``, output ``output``, batch dimension dynamic;
    * ``torch_export``: a ``torch.export`` program (:func:`torch.export.save`):
      ``torch.export.load(io.BytesIO(data)).module()(ids, values)``. (``torchscript`` is
      refused: torch deprecates ``torch.jit``, and a program is what replaces it.)

    Raises:
        TrailsError: for an unknown format or model, or a format the model's family cannot write.
    """
    if fmt in RETIRED_FORMATS:
        raise TrailsError(f"the export format {sql_text(fmt)} is no longer written: torch deprecates torch.jit",
                          hint=f"use '{RETIRED_FORMATS[fmt]}' (a torch.export program: "
                               "torch.export.load(io.BytesIO(data)).module()) or 'onnx'")
    if fmt not in FORMATS:
        raise TrailsError(f"unknown export format {sql_text(fmt)}", hint="valid: " + ", ".join(FORMATS))
    model = load_model(session, model_id)
    return model.family.export(model.fitted, model.task, model.layout.n_fields, fmt)


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
        "encoding": "field i (in this order): categorical → ids[:, i] = the id at the position of the value "
                    "(as PostgreSQL's ::text renders it) in values (first_id + that position unless a warm "
                    "start extended the layout), unknown_id for a value not there, "
                    "missing_id for NULL or ''; values[:, i] = 1. numeric → ids[:, i] = first_id and "
                    "values[:, i] = (x - mean) / std, or missing_id and 1 for NULL, NaN or ±Infinity (an MLP "
                    "that bins numeric fields does it inside the graph; quantiles are the train quantiles it "
                    "took its bins from).",
        "fields": [{"name": f.name, "kind": f.kind, "sql_type": f.sql_type, "first_id": f.first_id,
                    "cardinality": f.cardinality, "missing_id": f.missing_id, "unknown_id": f.unknown_id,
                    **(dict(zip(("values", "ids"), f.dictionary())) if f.kind == "categorical"
                       else {"mean": f.mean, "std": f.std, "quantiles": list(f.quantiles)})}
                   for f in layout.fields],
    }
