"""Turn PL/Python values of a table row into the forms a layout encodes.

``select_sql`` casts categorical columns to text and numeric ones to float8 in SQL. A row
handed to a PL/Python function (``trails.predict(model_id, t)``) arrives as Python values
instead; :func:`as_postgres_text` renders them as PostgreSQL's ``::text`` would, so both
paths hit the same dictionary entries.
"""

from __future__ import annotations

import datetime
import decimal


def as_postgres_text(value) -> str | None:
    """``value`` as PostgreSQL prints it with ``::text`` (DateStyle ISO)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value == value else "NaN"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def as_float(value) -> float | None:
    """A numeric field's value; NaN and ±Infinity (as numbers, or as the strings to_jsonb
    renders them as) become NaN, which the layout encodes as missing."""
    if value is None:
        return None
    if value in ("NaN", "Infinity", "-Infinity"):
        return float("nan")
    if isinstance(value, bool):
        return float(value)
    return float(value)


def columns_from_rows(layout, rows: list) -> dict:
    """``{"f0": [...], ..., "label": [...]}`` for :meth:`Layout.encode` from row dicts; a
    missing column counts as NULL, and the label is ignored (set to None)."""
    columns = {}
    for i, field in enumerate(layout.fields):
        convert = as_float if field.kind == "numeric" else as_postgres_text
        columns[f"f{i}"] = [convert(row.get(field.name)) for row in rows]
    columns["label"] = [None] * len(rows)
    return columns
