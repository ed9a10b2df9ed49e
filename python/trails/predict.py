"""Scoring rows with a stored model: one row (``trails.predict``, ``predict_label``,
``predict_proba``) or a whole table (``trails.predict_table``), encoded with the model's own
layout (unseen categories → the field's unknown id, NULL → its missing id).

A row or table must carry every field the model was trained on, each of a compatible type
(a number for a numeric field); otherwise the call is an ERROR naming the columns — a model
never scores a row it cannot read.

What comes back follows the model's task (:class:`~trails.task.Task`): ``predict`` gives
P(positive) for a binary model and the value for a regression one; ``predict_label`` the
most probable class; ``predict_proba`` class → probability.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np

from trails.config import load_config
from trails.data.layout import NUMERIC_CATEGORIES, table_columns
from trails.data.row_values import columns_from_rows
from trails.data.session import Session
from trails.errors import TrailsError
from trails.registry import StoredModel, load_model

_CACHE: "OrderedDict[int, StoredModel]" = OrderedDict()
_CACHE_SIZE = 4
OUTPUTS = ("score", "label", "proba")
NON_FINITE = ("NaN", "Infinity", "-Infinity")  # how to_jsonb renders those numbers: read as missing


def cached_model(session: Session, model_id: int) -> StoredModel:
    """The stored model, kept in this process (a backend) for the next rows."""
    if model_id in _CACHE:
        _CACHE.move_to_end(model_id)
        return _CACHE[model_id]
    model = load_model(session, model_id)
    _CACHE[model_id] = model
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return model


def _require_output(model: StoredModel, output: str) -> None:
    """Raise unless ``output`` (``score``, ``label``, ``proba``) fits the model's task."""
    task = model.task
    if output == "score" and task.kind == "multiclass":
        raise TrailsError(f"model {model.model_id} is a multiclass classifier ({len(task.classes)} classes): "
                          "it has no single score",
                          hint="use trails.predict_label(model_id, row) for the class, or "
                               "trails.predict_proba(model_id, row) for each class's probability")
    if output in ("label", "proba") and not task.is_classification:
        raise TrailsError(f"model {model.model_id} is a regression model: it has no classes",
                          hint="use trails.predict(model_id, row) for the predicted value")


def _require_columns(model: StoredModel, present: set, what: str, advice: str) -> None:
    """Raise TrailsError when ``present`` (column names of ``what``: a row, a table) lacks any
    of the model's fields, naming them."""
    fields = model.layout.fields
    missing = [f.name for f in fields if f.name not in present]
    if missing:
        raise TrailsError(f"{what} lacks {len(missing)} of the {len(fields)} columns model {model.model_id} "
                          f"reads: {', '.join(missing)}",
                          detail="model columns: " + ", ".join(f.name for f in fields),
                          hint=f"{advice} with those columns (the model was trained on {model.dataset})")


def check_row_fields(model: StoredModel, row: dict) -> None:
    """Raise TrailsError naming every model field ``row`` lacks, or holds with a type the
    field cannot read (a numeric field needs a JSON number or NULL; no field takes an
    object or array)."""
    fields = model.layout.fields
    _require_columns(model, set(row), "the row", "pass a row of a table")
    wrong = []
    for f in fields:
        value = row[f.name]
        if value is None or (f.kind == "numeric" and value in NON_FINITE):
            continue
        if isinstance(value, (dict, list)) or (
                f.kind == "numeric" and (isinstance(value, (bool, str)) or not isinstance(value, (int, float)))):
            wrong.append(f"{f.name} ({'a number' if f.kind == 'numeric' else 'a scalar'} expected, "
                         f"got {type(value).__name__} {json.dumps(value)[:40]})")
    if wrong:
        raise TrailsError(f"the row has columns of a type model {model.model_id} cannot read: {', '.join(wrong)}",
                          hint="cast the columns to the types of the training table")


def _row_outputs(session: Session, model_id, row, output: str):
    """The model, and its outputs for one row (``None`` for a NULL row)."""
    if isinstance(row, str):  # jsonb from to_jsonb(row)
        row = json.loads(row)
    if row is not None and not isinstance(row, dict):
        raise TrailsError("trails.predict expects a table row, e.g. trails.predict(1, t) FROM tbl t",
                          hint="pass the whole row (the table alias), not a single column")
    model = cached_model(session, model_id)
    _require_output(model, output)
    if row is None:
        return model, None
    check_row_fields(model, row)
    ids, values, _ = model.layout.encode(columns_from_rows(model.layout, [row]))
    return model, model.predict(ids, values)[0]


def predict_row(session: Session, model_id, row) -> float | None:
    """Binary: P(positive); regression: the predicted value; None for a NULL row. A
    multiclass model is an error (its HINT names predict_label and predict_proba)."""
    model, outputs = _row_outputs(session, model_id, row, "score")
    if outputs is None:
        return None
    return float(outputs[1] if model.task.kind == "binary" else outputs)


def predict_label(session: Session, model_id, row) -> str | None:
    """The most probable class of one row (as text), for a classifier."""
    model, outputs = _row_outputs(session, model_id, row, "label")
    return None if outputs is None else model.task.classes[int(np.argmax(outputs))]


def predict_proba(session: Session, model_id, row) -> str | None:
    """``{class: probability}`` of one row as JSON text, for a classifier."""
    model, outputs = _row_outputs(session, model_id, row, "proba")
    if outputs is None:
        return None
    return json.dumps(dict(zip(model.task.classes, (float(p) for p in outputs))))


def check_table_fields(model: StoredModel, table: str, columns: list[dict]) -> None:
    """Raise TrailsError naming the model fields ``table`` lacks, or has with a non-numeric
    type where the model reads a number."""
    by_name = {c["name"]: c for c in columns}
    fields = model.layout.fields
    _require_columns(model, set(by_name), f"table {table}", "score a table")
    wrong = [f"{f.name} ({by_name[f.name]['sql_type']}, the model reads {f.sql_type})" for f in fields
             if f.kind == "numeric" and by_name[f.name]["category"] not in NUMERIC_CATEGORIES]
    if wrong:
        raise TrailsError(f"table {table} has columns of a type model {model.model_id} cannot read: "
                          + ", ".join(wrong), hint="cast them to numbers in a view")


def predict_table(session: Session, model_id, table) -> list[tuple]:
    """``(id, score, label, proba)`` for every row of ``table`` (regclass text): ``id`` is the
    table's ``id`` column when it has one, else the row number; ``score`` P(positive) or the
    predicted value (NULL for multiclass); ``label`` the most probable class and ``proba``
    class → probability as JSON text (NULL for regression)."""
    if table is None:
        raise TrailsError("tbl must not be NULL", hint="e.g. trails.predict_table(1, 'frappe_test')")
    model = cached_model(session, model_id)
    columns = table_columns(session, table)
    check_table_fields(model, table, columns)
    names = {c["name"] for c in columns}
    sql = model.layout.select_features_sql(table, session.quote_ident, "id" if "id" in names else None, names)
    task, results = model.task, []
    for chunk in session.chunks(sql, load_config().getint("data", "chunk_rows")):
        ids, values, _ = model.layout.encode(chunk)
        outputs = model.predict(ids, values)
        if task.kind == "regression":
            results.extend((key, float(v), None, None) for key, v in zip(chunk["key"], outputs))
            continue
        for key, p in zip(chunk["key"], outputs):
            results.append((key, float(p[1]) if task.kind == "binary" else None,
                            task.classes[int(np.argmax(p))], json.dumps(dict(zip(task.classes, p.tolist())))))
    return results
