"""A ``trails.models`` row as serving needs it: its layout, task, family and weights, read
without building the model (which :func:`trails.registry.load_model` does for training)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from trails.data.layout import Layout
from trails.data.layout_store import load_layout
from trails.data.session import Session
from trails.errors import MODEL_NOT_VISIBLE, TrailsError
from trails.task import Task

MLP_FAMILY = "mlp"
"""The family of a row whose ``hyper`` names none (every row written before families existed)."""


@dataclass(frozen=True)
class StoredRow:
    """One stored model, not built.

    Attributes:
        model_id, dataset, arch, params: its row's.
        family: the family named in its ``hyper`` (``"mlp"`` when absent).
        layout: how its rows are encoded; task: the layout's, with the metric that selected it.
        hyper: its ``hyper`` JSON object; weights: its bytes.
    """

    model_id: int
    dataset: str
    arch: str
    family: str
    layout: Layout
    task: Task
    hyper: dict
    weights: bytes
    params: int


def read_stored(session: Session, model_id) -> StoredRow:
    """The row of ``model_id``.

    Raises:
        TrailsError: for a NULL id, or a model that does not exist (the HINT lists the newest).
    """
    if model_id is None:
        raise TrailsError("model_id must not be NULL", hint="SELECT model_id FROM trails.models")
    rows = session.query("SELECT model_id, dataset, layout_id, arch, hyper, weights, metric, params FROM"
                         " trails.models WHERE model_id = $1", [model_id], ["bigint"])
    if not rows:
        known = session.query("SELECT string_agg(model_id::text, ', ' ORDER BY model_id DESC) AS ids"
                              " FROM (SELECT model_id FROM trails.models ORDER BY model_id DESC"
                              " LIMIT 10) s")[0]["ids"]
        raise TrailsError(f"model {model_id} not found", detail=MODEL_NOT_VISIBLE,
                          hint=f"stored models: {known}" if known else
                          "run SELECT * FROM model_selection('frappe', 60) to create one")
    row = rows[0]
    hyper = row["hyper"] if isinstance(row["hyper"], dict) else json.loads(row["hyper"])
    layout = load_layout(session, row["layout_id"])
    return StoredRow(int(row["model_id"]), row["dataset"], row["arch"], hyper.get("family") or MLP_FAMILY, layout,
                     layout.task.with_metric(row["metric"]), hyper, bytes(row["weights"]), int(row["params"]))
