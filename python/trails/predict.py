"""Scoring rows with a stored model: one row (``trails.predict``) or a whole table
(``trails.predict_table``), encoded with the model's own layout (unseen categories → the
field's unknown id, NULL → its missing id)."""

from __future__ import annotations

import json
from collections import OrderedDict

from trails.config import load_config
from trails.data.layout import table_columns
from trails.data.row_values import columns_from_rows
from trails.data.session import Session
from trails.errors import TrailsError
from trails.model import positive_probability
from trails.registry import StoredModel, load_model

_CACHE: "OrderedDict[int, StoredModel]" = OrderedDict()
_CACHE_SIZE = 4


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


def predict_row(session: Session, model_id, row) -> float | None:
    """P(positive) for one row (a dict of column → value); None for a NULL row (of a model
    that exists: an unknown ``model_id`` is an error whatever the row)."""
    if isinstance(row, str):  # jsonb from trails.predict's to_jsonb(row)
        row = json.loads(row)
    if row is not None and not isinstance(row, dict):
        raise TrailsError("trails.predict expects a table row, e.g. trails.predict(1, t) FROM tbl t",
                          hint="pass the whole row (the table alias), not a single column")
    model = cached_model(session, model_id)
    if row is None:
        return None
    ids, values, _ = model.layout.encode(columns_from_rows(model.layout, [row]))
    return float(positive_probability(model.network, ids, values)[0])


def predict_table(session: Session, model_id, table) -> list[tuple[int, float]]:
    """(id, P(positive)) for every row of ``table`` (regclass text); ``id`` is the table's
    ``id`` column when it has one, else the row number."""
    if table is None:
        raise TrailsError("tbl must not be NULL", hint="e.g. trails.predict_table(1, 'frappe_test')")
    model = cached_model(session, model_id)
    names = {c["name"] for c in table_columns(session, table)}
    used = [f.name for f in model.layout.fields if f.name in names]
    if not used:
        raise TrailsError(f"table {table} has none of the model's feature columns",
                          hint="model columns: " + ", ".join(f.name for f in model.layout.fields))
    sql = model.layout.select_features_sql(table, session.quote_ident,
                                           "id" if "id" in names else None, names)
    results = []
    for chunk in session.chunks(sql, load_config().getint("data", "chunk_rows")):
        ids, values, _ = model.layout.encode(chunk)
        scores = positive_probability(model.network, ids, values)
        results.extend(zip(chunk["key"], scores.tolist()))
    return results
