"""Runs and models: ``trails.runs`` and ``trails.models``.

A run and its model are written together at the end of ``model_selection``, in one
subtransaction: a call that fails or is cancelled leaves neither behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from trails.data.layout import Layout
from trails.data.layout_store import load_layout
from trails.data.session import Session
from trails.errors import TrailsError
from trails.model import TabularMLP, build_model
from trails.space import parse_arch


@dataclass
class StoredModel:
    """A model as stored: its network (eval mode, CPU), layout and hyper-parameters."""

    model_id: int
    dataset: str
    arch: str
    layout: Layout
    hyper: dict
    network: TabularMLP


def store_run_and_model(session: Session, run: dict, model: dict) -> tuple[int, int]:
    """Insert the run and its model atomically; returns (run_id, model_id).

    ``run``: the ``trails.runs`` columns but run_id/finished_at (``phases`` a dict);
    ``model``: arch, hyper (dict), weights (bytes), valid_auc, test_auc.
    """
    run_columns = ["dataset", "label", "layout_id", "budget_s", "tfmem", "refinement", "n_scored",
                   "k_refined", "u", "t1", "t2", "phases", "best_arch", "valid_auc", "test_auc",
                   "elapsed_s", "seed", "started_at"]
    run_types = ["text", "text", "bigint", "float8", "text", "text", "int", "int", "int", "float8",
                 "float8", "jsonb", "text", "float8", "float8", "float8", "int", "timestamptz"]
    values = [json.dumps(run[c]) if c == "phases" else run[c] for c in run_columns]
    placeholders = ", ".join(f"${i}" for i in range(1, len(run_columns) + 1))
    with session.atomic():
        run_id = session.query(
            f"INSERT INTO trails.runs ({', '.join(run_columns)}) VALUES ({placeholders})"
            " RETURNING run_id", values, run_types)[0]["run_id"]
        model_id = session.query(
            "INSERT INTO trails.models (run_id, dataset, layout_id, arch, hyper, weights, valid_auc,"
            " test_auc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING model_id",
            [run_id, run["dataset"], run["layout_id"], model["arch"], json.dumps(model["hyper"]),
             model["weights"], model["valid_auc"], model["test_auc"]],
            ["bigint", "text", "bigint", "text", "jsonb", "bytea", "float8", "float8"])[0]["model_id"]
    return run_id, model_id


def load_model(session: Session, model_id) -> StoredModel:
    """The stored model ``model_id``; :class:`TrailsError` when there is none."""

    if model_id is None:
        raise TrailsError("model_id must not be NULL", hint="SELECT model_id FROM trails.models")
    rows = session.query("SELECT model_id, dataset, layout_id, arch, hyper, weights FROM"
                         " trails.models WHERE model_id = $1", [model_id], ["bigint"])
    if not rows:
        known = session.query("SELECT string_agg(model_id::text, ', ' ORDER BY model_id DESC) AS ids"
                              " FROM (SELECT model_id FROM trails.models ORDER BY model_id DESC"
                              " LIMIT 10) s")[0]["ids"]
        raise TrailsError(f"model {model_id} not found",
                          hint=f"stored models: {known}" if known else
                          "run SELECT * FROM model_selection('frappe', 60) to create one")
    row = rows[0]
    hyper = row["hyper"] if isinstance(row["hyper"], dict) else json.loads(row["hyper"])
    network = build_model(parse_arch(row["arch"]), hyper["n_ids"], hyper["n_fields"],
                          hyper["embedding_dim"], hyper["batch_norm"], state=row["weights"])
    return StoredModel(row["model_id"], row["dataset"], row["arch"],
                       load_layout(session, row["layout_id"]), hyper, network)
