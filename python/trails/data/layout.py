"""The field layout of a table: which columns become which feature ids.

Every non-label column becomes one field, or is skipped:

* **categorical** — enum, bool and text columns, and integer columns with few distinct
  values (≤ ``categorical_max_distinct`` and ≤ ``categorical_max_ratio`` of the rows). Each
  dictionary value gets one id; the value fed to the model is 1. An enum's dictionary is its
  type's labels in their declared order (its domain, not the rows that happen to be in
  train); others keep the ``max_vocabulary`` most frequent train values, in value order.
* **numeric** — other integer and all floating/numeric columns: one id, value standardised
  with the train mean and standard deviation. The layout also keeps the column's train
  quantiles (``[layout] numeric_quantiles`` + 1 of them, ``quantiles``): the bins of an MLP that
  embeds the field piecewise-linearly (:mod:`trails.piecewise`; the ids and values stay these).
* **key** (skipped) — an integer or text column whose every train value is distinct
  (an identifier; a float column with all values distinct is an ordinary numeric field).

Ids are laid end to end field by field (so frappe's are ARM-Net's 0..5381), then every field
gets two more: a *missing* id (NULL, or an empty string) and an *unknown* id (a category not
in the dictionary). ``n_ids = Σ cardinality + 2·fields``.

A layout a warm start *extends* (:mod:`trails.data.layout_extend`) keeps every value id; the
values new rows brought get ids after the last value id (``added_values``/``added_ids`` of
their field), and the missing and unknown ids move up past them, so they stay the last
``2·fields`` ids: ``n_ids = Σ cardinality + Σ added + 2·fields``.

The label is resolved to a :class:`~trails.task.Task` (binary, multiclass or regression) by
:func:`trails.data.label.resolve_task`, which also checks it; the task is stored with the
layout and encodes the labels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from trails.config import load_config
from trails.data.dataset import Dataset
from trails.data.session import Session
from trails.errors import TrailsError
from trails.task import Task

INTEGER_TYPES = {"smallint", "integer", "bigint"}
NUMERIC_CATEGORIES = {"N"}  # pg_type.typcategory
NUMERIC_QUANTILES = 32  # [layout] numeric_quantiles when config.ini has none


@dataclass
class Field:
    """One feature field. ``first_id`` .. ``first_id + cardinality - 1`` are its value ids."""

    name: str
    kind: str  # "categorical" | "numeric"
    sql_type: str
    first_id: int
    cardinality: int
    missing_id: int = -1
    unknown_id: int = -1
    values: list = field(default_factory=list)  # categorical dictionary (text)
    mean: float = 0.0
    std: float = 1.0
    added_values: list = field(default_factory=list)  # values an extension added (text)
    added_ids: list = field(default_factory=list)  # their ids, in the same order
    quantiles: list = field(default_factory=list)  # numeric: train quantiles at k/Q, k = 0..Q (column units)

    @property
    def last_id(self) -> int:
        """The last id of the field's first block (its values as first inferred)."""
        return self.first_id + self.cardinality - 1

    @property
    def value_count(self) -> int:
        """Values with an id of their own: the first block and what extensions added."""
        return self.cardinality + len(self.added_values)

    def dictionary(self) -> tuple[list, list]:
        """``(values, ids)`` of a categorical field: its first block, then what extensions
        added (both lists in the same order)."""
        ids = list(range(self.first_id, self.first_id + self.cardinality)) + [int(i) for i in self.added_ids]
        return list(self.values) + list(self.added_values), ids

    def encode_numbers(self, x: np.ndarray) -> tuple:
        """A numeric field's float64 values ``(B,)`` → ids int64 ``(B,)`` and values
        float32 ``(B,)``: standardised, or the missing id and 1 for NaN (NULL) and ±Infinity."""
        missing = ~np.isfinite(x)
        ids = np.where(missing, self.missing_id, self.first_id)
        return ids, np.where(missing, 1.0, (x - self.mean) / self.std).astype(np.float32)

    def select_expression(self, quote_ident) -> str:
        cast = "float8" if self.kind == "numeric" else "text"
        return f"t.{quote_ident(self.name)}::{cast}"


@dataclass
class Layout:
    """How rows of one dataset become ``(ids, values, labels)`` arrays."""

    label: str
    task: Task  # what the label is (binary, multiclass, regression) and how it is encoded
    fields: list
    skipped: dict  # column → why
    train_rows: int
    layout_id: int | None = None
    notes: list = field(default_factory=list)  # what resolving the label left out, said every call

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def n_ids(self) -> int:
        return sum(f.value_count for f in self.fields) + 2 * len(self.fields)

    def numeric_edges(self) -> tuple:
        """``((field index, value id, quantiles in standardised units), …)`` of the numeric
        fields with train quantiles (:attr:`TrainingSettings.numeric_edges`): what an MLP bins
        a field's value with (:mod:`trails.piecewise`). Empty for a layout stored before
        quantiles were kept."""
        return tuple((i, f.first_id, tuple((float(q) - f.mean) / f.std for q in f.quantiles))
                     for i, f in enumerate(self.fields) if f.kind == "numeric" and len(f.quantiles) >= 2)

    def to_json(self) -> dict:
        return {"label": self.label, "task": self.task.to_json(), "train_rows": self.train_rows,
                "skipped": self.skipped, "fields": [asdict(f) for f in self.fields],
                "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict, layout_id: int | None = None) -> "Layout":
        return cls(data["label"], Task.from_json(data["task"]), [Field(**f) for f in data["fields"]],
                   data["skipped"], data["train_rows"], layout_id, list(data.get("notes", [])))

    def select_sql(self, dataset: Dataset, split: str, quote_ident, limit: int | None = None,
                   ordered: bool = False) -> str:
        """The query returning a split's rows as ``f0..f{F-1}, label`` (rows the task cannot
        learn from dropped: a NULL label, a class left out as too rare)."""
        columns = [f"{fld.select_expression(quote_ident)} AS f{i}"
                   for i, fld in enumerate(self.fields)]
        columns.append(f"t.{quote_ident(self.label)}::text AS label")
        source = dataset.source(split, self.task.label_condition(f"t.{quote_ident(self.label)}"))
        sql = f"SELECT {', '.join(columns)} {source}"
        if ordered:
            sql += " ORDER BY t.ctid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql

    def select_features_sql(self, table: str, quote_ident, key: str | None,
                            present: set) -> str:
        """Rows of any (quoted) ``table`` as ``key, f0..f{F-1}, label`` for prediction.

        ``key`` is the named column as bigint (the row number when None); ``present`` is the
        table's column names: a field whose column is absent reads as NULL (its missing id;
        ``trails.predict_table`` refuses such a table first). The label is not read (NULL).
        """
        key_sql = f"t.{quote_ident(key)}::bigint" if key else "row_number() OVER ()"
        columns = [f"{key_sql} AS key"]
        for i, fld in enumerate(self.fields):
            expression = fld.select_expression(quote_ident) if fld.name in present else "NULL"
            columns.append(f"{expression} AS f{i}")
        columns.append("NULL::text AS label")
        return f"SELECT {', '.join(columns)} FROM {table} AS t"

    def encode(self, columns: dict) -> tuple:
        """Encode one chunk (``{"f0": [...], ..., "label": [...]}``, as ``select_sql`` names).

        Returns ``ids`` int64 (B, F), ``values`` float32 (B, F), ``labels`` (B,): int64 class
        indices, or float32 standardised targets for regression (:meth:`Task.encode_labels`).
        """
        n = len(columns["label"])
        ids = np.empty((n, self.n_fields), dtype=np.int64)
        values = np.ones((n, self.n_fields), dtype=np.float32)
        for i, fld in enumerate(self.fields):
            raw = columns[f"f{i}"]
            if fld.kind == "numeric":
                ids[:, i], values[:, i] = fld.encode_numbers(
                    np.array([math.nan if v is None else v for v in raw], dtype=np.float64))
            else:
                lookup = self._lookup(i)
                unknown, missing = fld.unknown_id, fld.missing_id
                ids[:, i] = [missing if v is None or v == "" else lookup.get(v, unknown)
                             for v in raw]
        return ids, values, self.task.encode_labels(columns["label"])

    def _lookup(self, index: int) -> dict:
        cache = self.__dict__.setdefault("_lookups", {})
        if index not in cache:
            cache[index] = dict(zip(*self.fields[index].dictionary()))
        return cache[index]


def table_columns(session: Session, table: str) -> list[dict]:
    """``[{name, sql_type, category, enum_oid}]`` of a (quoted) table, in column order."""
    return session.query(
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type,"
        " ty.typcategory AS category, CASE WHEN ty.typtype = 'e' THEN ty.oid END AS enum_oid"
        " FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum", [table], ["text"])


def _train_statistics(session: Session, dataset: Dataset, features: list, quantiles: int) -> dict:
    """One scan: ``rows`` and, for numeric columns ``i``, mean ``m{i}``, std ``s{i}`` and the
    ``quantiles`` + 1 quantiles ``q{i}`` (at k/quantiles, interpolated) of the finite values
    (NaN and ±Infinity are encoded as missing, like NULL)."""
    parts = ["count(*) AS rows"]
    fractions = "ARRAY[" + ", ".join(f"{k / quantiles!r}" for k in range(quantiles + 1)) + "]::float8[]"
    for i, c in enumerate(features):
        if c["category"] in NUMERIC_CATEGORIES:
            col = f"t.{session.quote_ident(c['name'])}::float8"
            finite = f"FILTER (WHERE {col} NOT IN ('NaN', 'Infinity', '-Infinity'))"
            parts.append(f"avg({col}) {finite} AS m{i}, stddev_pop({col}) {finite} AS s{i}, "
                         f"percentile_cont({fractions}) WITHIN GROUP (ORDER BY {col}) {finite} AS q{i}")
    return session.query(f"SELECT {', '.join(parts)} {dataset.source('train')}")[0]


def _value_counts(session: Session, dataset: Dataset, features: list) -> dict:
    """One scan: {feature index: {value as text: train rows}}, NULLs and '' left out."""
    pairs = ", ".join(f"({i}, t.{session.quote_ident(c['name'])}::text)"
                      for i, c in enumerate(features) if c["enum_oid"] is None)
    if not pairs:
        return {}
    rows = session.query(
        f"SELECT x.k AS k, x.v AS v, count(*) AS n FROM (SELECT t.* {dataset.source('train')}) AS t"
        f" CROSS JOIN LATERAL (VALUES {pairs}) AS x(k, v)"
        " WHERE x.v IS NOT NULL AND x.v <> '' GROUP BY 1, 2")
    counts: dict = {}
    for row in rows:
        counts.setdefault(row["k"], {})[row["v"]] = row["n"]
    return counts


def infer_layout(session: Session, dataset: Dataset, label: str, task: str = "auto") -> Layout:
    """Inspect the train split and build a :class:`Layout` (not stored; see layout_store).
    ``task``: ``auto`` or the task asked for (see :func:`trails.data.label.resolve_task`)."""
    from trails.data.label import resolve_task

    config = load_config()
    max_distinct = config.getint("layout", "categorical_max_distinct")
    max_ratio = config.getfloat("layout", "categorical_max_ratio")
    max_vocabulary = config.getint("layout", "max_vocabulary")
    quantiles = config.getint("layout", "numeric_quantiles", fallback=NUMERIC_QUANTILES)
    if quantiles < 1:
        raise TrailsError(f"the value of numeric_quantiles is {quantiles}, but must be numeric_quantiles >= 1",
                          hint="set [layout] numeric_quantiles in config.ini, e.g. 32")
    columns = table_columns(session, dataset.train_table)
    by_name = {c["name"]: c for c in columns}
    if label not in by_name:
        raise TrailsError(f"label column \"{label}\" not found in {dataset.train_table}",
                          hint="columns: " + ", ".join(c["name"] for c in columns))
    features = [c for c in columns if c["name"] != label]
    if not features:
        raise TrailsError(f"{dataset.train_table} has no column besides the label \"{label}\"",
                          hint="a dataset needs at least one feature column")
    resolved_task, notes = resolve_task(session, dataset, label, by_name[label], features, task)

    stats = _train_statistics(session, dataset, features, quantiles)
    rows = stats["rows"]
    if rows == 0:
        raise TrailsError(f"the train split of \"{dataset.name}\" is empty",
                          hint="load rows into the table before selecting a model for it")
    counts = _value_counts(session, dataset, features)

    fields, skipped, next_id = [], {}, 0
    for i, c in enumerate(features):
        name, sql_type, category = c["name"], c["sql_type"], c["category"]
        value_counts = counts.get(i, {})
        distinct = len(value_counts)
        is_integer = sql_type in INTEGER_TYPES
        if c["enum_oid"] is not None:
            labels = session.query("SELECT enumlabel::text AS v FROM pg_enum WHERE enumtypid = $1"
                                   " ORDER BY enumsortorder", [c["enum_oid"]], ["oid"])
            fld = Field(name, "categorical", sql_type, next_id, len(labels),
                        values=[r["v"] for r in labels])
        elif distinct == 0:
            skipped[name] = "always NULL or empty in train"
            continue
        elif distinct == rows and rows > 1 and (is_integer or category not in "NB"):
            skipped[name] = f"key: all {rows} train values distinct"
            continue
        elif category in NUMERIC_CATEGORIES and not (
                is_integer and distinct <= max_distinct and distinct <= max_ratio * rows):
            std = stats[f"s{i}"] or 0.0
            fld = Field(name, "numeric", sql_type, next_id, 1, mean=float(stats[f"m{i}"] or 0.0),
                        std=float(std) if std > 0 else 1.0, quantiles=[float(q) for q in stats[f"q{i}"] or []])
        else:
            frequent = sorted(value_counts, key=lambda v: (-value_counts[v], v))[:max_vocabulary]
            values = sorted(frequent, key=int if is_integer else None)
            fld = Field(name, "categorical", sql_type, next_id, len(values), values=values)
        fields.append(fld)
        next_id += fld.cardinality
    if not fields:
        raise TrailsError(f"no usable feature column in {dataset.train_table}",
                          detail="; ".join(f"{k}: {v}" for k, v in skipped.items()),
                          hint="a dataset needs at least one column that is not a key")
    for fld in fields:
        fld.missing_id, fld.unknown_id = next_id, next_id + 1
        next_id += 2
    return Layout(label, resolved_task, fields, skipped, rows, notes=notes)
