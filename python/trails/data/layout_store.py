"""Layouts are computed once per (train table, label, row count, layout settings) and kept
in ``trails.layouts``, so valid/test/predict and the refinement service encode alike."""

from __future__ import annotations

import hashlib
import json

from trails.config import load_config
from trails.data.dataset import Dataset
from trails.data.layout import Layout, infer_layout
from trails.data.layout_extend import extend_layout
from trails.data.session import Session


def settings_signature(task: str) -> str:
    """The layout settings and the task asked for (``auto`` or a task), hashed."""
    config = load_config()
    text = json.dumps([sorted(config.items("layout")), task])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _train_rows(session: Session, dataset: Dataset) -> int:
    return session.query(f"SELECT count(*) AS n {dataset.source('train')}")[0]["n"]


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value)


def load_layout(session: Session, layout_id: int) -> Layout:
    """The stored layout ``layout_id``; raises ``KeyError`` when there is none."""
    rows = session.query("SELECT layout FROM trails.layouts WHERE layout_id = $1",
                         [layout_id], ["bigint"])
    if not rows:
        raise KeyError(f"layout {layout_id} not found in trails.layouts")
    return Layout.from_json(_as_dict(rows[0]["layout"]), layout_id)


def get_or_create_layout(session: Session, dataset: Dataset, label: str,
                         train_rows: int | None = None, task: str = "auto", extends: Layout | None = None) -> Layout:
    """The stored layout of ``dataset`` for ``label`` and ``task`` (``auto`` or a task),
    inferring and storing it if new (the label is checked then: see :mod:`trails.data.label`).

    ``train_rows`` is the train split's row count when the caller has it (counted otherwise):
    a layout is kept per row count, so one inferred before rows were added is not reused.
    ``extends``: a stored layout of this dataset and label to keep the ids of (a warm start):
    itself when the train split has as many rows as it was inferred from, else its extension
    (:func:`~trails.data.layout_extend.extend_layout`, stored with ``extends_layout``).
    Stored in a subtransaction: a failure leaves no row behind. Calls that infer the same new
    layout at once each store an identical row (none waits for another's transaction).

    Raises:
        TrailsError: for a label the task cannot use (when inferring).
        CannotExtend: when ``extends`` cannot describe the table now.
    """
    signature = settings_signature(task)
    rows_now = _train_rows(session, dataset) if train_rows is None else int(train_rows)
    if extends is not None and extends.train_rows == rows_now:
        return extends
    key = [dataset.train_table, label, rows_now, signature]
    key_types = ["text", "text", "bigint", "text"]
    lookup = ("SELECT layout_id, layout FROM trails.layouts WHERE train_table = $1"
              " AND label = $2 AND train_rows = $3 AND settings = $4"
              + (" AND extends_layout = $5" if extends is not None else " AND extends_layout IS NULL")
              + " ORDER BY layout_id LIMIT 1")
    found = session.query(lookup, key + ([extends.layout_id] if extends is not None else []),
                          key_types + (["bigint"] if extends is not None else []))
    if found:
        return Layout.from_json(_as_dict(found[0]["layout"]), found[0]["layout_id"])
    layout = infer_layout(session, dataset, label, task)
    if extends is not None:
        layout = extend_layout(extends, layout)
    # no unique key to conflict on: a concurrent call inferring the same layout does not wait
    # for this transaction (it stores its own identical row)
    with session.atomic():
        layout.layout_id = session.query(
            "INSERT INTO trails.layouts (dataset, train_table, label, train_rows, settings, layout, extends_layout)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING layout_id",
            [dataset.name, *key, json.dumps(layout.to_json()), None if extends is None else extends.layout_id],
            ["text", "text", "text", "bigint", "text", "jsonb", "bigint"])[0]["layout_id"]
    return layout
