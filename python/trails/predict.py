"""Scoring rows with a stored model: one row (``trails.predict``, ``predict_label``,
``predict_proba``) or a whole table (``trails.predict_table``), encoded with the model's own
layout (unseen categories → the field's unknown id, NULL → its missing id), through
:mod:`trails.serving` (no torch; the model is built once per backend).

A row or table must carry every field the model was trained on, each of a compatible type
(a number for a numeric field); otherwise the call is an ERROR naming the columns — a model
never scores a row it cannot read.

What comes back follows the model's task (:class:`~trails.task.Task`): ``predict`` gives
P(positive) for a binary model and the value for a regression one; ``predict_label`` the
most probable class; ``predict_proba`` class → probability.
"""

from __future__ import annotations

import json

import numpy as np

from trails.data.layout import NUMERIC_CATEGORIES, table_columns
from trails.data.session import Session
from trails.data.table_reader import iter_table
from trails.errors import TrailsError
from trails.serving.scorer import Scorer, scorer_for

OUTPUTS = ("score", "label", "proba")


def _require_output(scorer: Scorer, output: str) -> None:
    """Raise unless ``output`` (``score``, ``label``, ``proba``) fits the model's task."""
    task, model_id = scorer.task, scorer.stored.model_id
    if output == "score" and task.kind == "multiclass":
        raise TrailsError(f"model {model_id} is a multiclass classifier ({len(task.classes)} classes): "
                          "it has no single score",
                          hint="use trails.predict_label(model_id, row) for the class, or "
                               "trails.predict_proba(model_id, row) for each class's probability")
    if output in ("label", "proba") and not task.is_classification:
        raise TrailsError(f"model {model_id} is a regression model: it has no classes",
                          hint="use trails.predict(model_id, row) for the predicted value")


def predict_one(session: Session, model_id, row, output: str):
    """One row's ``output``: the score (float: binary P(positive), regression value), the label
    (text) or the probabilities (JSON text); None for a NULL row.

    ``row`` is a dict, or its JSON text (``to_json(t)`` as PL/Python hands json over).

    Raises:
        TrailsError: for an unknown model or output, an output the task has not, a value that
            is not a row, or a row the model cannot read.
    """
    if output not in OUTPUTS:
        raise TrailsError(f"unknown output {output!r}", hint="one of: " + ", ".join(OUTPUTS))
    if isinstance(row, str):  # json from to_json(row)
        row = json.loads(row)
    if row is not None and not isinstance(row, dict):
        raise TrailsError("trails.predict expects a table row, e.g. trails.predict(1, t) FROM tbl t",
                          hint="pass the whole row (the table alias), not a single column")
    scorer = scorer_for(session, model_id)
    _require_output(scorer, output)
    if row is None:
        return None
    outputs, task = scorer.row_outputs(row), scorer.task
    if output == "score":
        return float(outputs[1] if task.kind == "binary" else outputs)
    if output == "label":
        return task.classes[int(np.argmax(outputs))]
    return json.dumps(dict(zip(task.classes, (float(p) for p in outputs))))


def check_table_fields(scorer: Scorer, table: str, columns: list[dict]) -> None:
    """Raise TrailsError naming the model fields ``table`` lacks, or has with a non-numeric
    type where the model reads a number."""
    by_name = {c["name"]: c for c in columns}
    stored, fields = scorer.stored, scorer.stored.layout.fields
    missing = [f.name for f in fields if f.name not in by_name]
    if missing:
        raise TrailsError(f"table {table} lacks {len(missing)} of the {len(fields)} columns model {stored.model_id} "
                          f"reads: {', '.join(missing)}",
                          detail="model columns: " + ", ".join(f.name for f in fields),
                          hint=f"score a table with those columns (the model was trained on {stored.dataset})")
    wrong = [f"{f.name} ({by_name[f.name]['sql_type']}, the model reads {f.sql_type})" for f in fields
             if f.kind == "numeric" and by_name[f.name]["category"] not in NUMERIC_CATEGORIES]
    if wrong:
        raise TrailsError(f"table {table} has columns of a type model {stored.model_id} cannot read: "
                          + ", ".join(wrong), hint="cast them to numbers in a view")


def predict_table(session: Session, model_id, table, with_proba: bool = False) -> list[dict]:
    """Every row of ``table`` (regclass text) scored, a chunk of rows (``[data] chunk_rows``) at a
    time, read by :func:`~trails.data.table_reader.iter_table`: per chunk, arrays of one length
    — ``ids`` (the table's ``id`` column when it has one, else the row number), ``scores``
    (P(positive) or the predicted value; None for multiclass), ``labels`` (the most probable
    class; None for regression) and, when ``with_proba``, ``probas`` (class → probability as
    JSON text per row; else None). Rows come in physical order (a heap) or a sequential scan's
    (a view); the row number counts in it. Arrays
    per chunk keep each one far below PostgreSQL's 1 GB a value on any table.

    Raises:
        TrailsError: for a NULL table, an unknown model, or a table lacking the model's columns
            or holding them with types it cannot read.
    """
    if table is None:
        raise TrailsError("tbl must not be NULL", hint="e.g. trails.predict_table(1, 'frappe_test')")
    scorer = scorer_for(session, model_id)
    columns = table_columns(session, table)
    check_table_fields(scorer, table, columns)
    key = "id" if any(c["name"] == "id" for c in columns) else None
    task = scorer.task
    classes = np.array(task.classes, dtype=object)
    chunks = []
    for keys, ids, values in iter_table(session, scorer.stored.layout, table, key):
        outputs = scorer.outputs(ids, values)
        if task.kind == "regression":
            chunks.append({"ids": keys, "scores": outputs.tolist(), "labels": None, "probas": None})
            continue
        probas = [json.dumps(dict(zip(task.classes, p))) for p in outputs.tolist()] if with_proba else None
        chunks.append({"ids": keys, "scores": outputs[:, 1].tolist() if task.kind == "binary" else None,
                       "labels": classes[outputs.argmax(axis=1)].tolist(), "probas": probas})
    return chunks
