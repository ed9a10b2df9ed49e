"""The label column, checked and resolved to a :class:`~trails.task.Task` before any scoring.

:func:`resolve_task` reads the train split's label once (value counts, NULLs, mean and
standard deviation) and:

* refuses, each with an ERROR naming the problem: no non-NULL label; a single class; a label
  with all values distinct asked to be classified (a key); a feature column that is a copy of
  the label (it would leak it); a task the label cannot be (``regression`` of a text column,
  ``binary`` of eight classes); an ``auto`` label that is ambiguous (text with many values);
* drops what cannot be learned, with a note: rows whose label is NULL (counted), and classes
  with fewer than ``MIN_CLASS_ROWS`` train rows (named, with their count);
* resolves ``task => 'auto'``: boolean or two values → binary; text, enum, boolean or integer
  with at most ``MAX_CLASSES`` values that are at most ``MAX_CLASS_SHARE`` of the rows →
  multiclass; any other numeric column → regression.

Binary classes: 0/1 and false/true keep 1/true as positive; any other two values make the less
frequent one positive (said in a note).
"""

from __future__ import annotations

from trails.data.dataset import Dataset
from trails.data.layout import INTEGER_TYPES
from trails.data.session import Session
from trails.errors import TrailsError
from trails.task import Task

# at most this many classes for a multiclass task (auto and explicit)
MAX_CLASSES = 100
# an auto label is multiclass only when its distinct values are at most this share of the rows
MAX_CLASS_SHARE = 0.05
# a class with fewer train rows is dropped (too rare to learn or evaluate)
MIN_CLASS_ROWS = 10


def _label_summary(session: Session, dataset: Dataset, label: str, numeric: bool) -> dict:
    """One scan of train: rows, non-NULL labels, distinct values and (numeric) mean/std."""
    column = f"t.{session.quote_ident(label)}"
    parts = [f"count(*) AS rows, count({column}) AS labelled, count(DISTINCT {column}::text) AS distinct_values"]
    if numeric:
        finite = f"FILTER (WHERE {column}::float8 NOT IN ('NaN', 'Infinity', '-Infinity'))"
        parts.append(f"avg({column}::float8) {finite} AS mean, stddev_pop({column}::float8) {finite} AS std")
    return session.query(f"SELECT {', '.join(parts)} {dataset.source('train')}")[0]


def _class_counts(session: Session, dataset: Dataset, label: str) -> dict:
    """{value as text: train rows} of the non-NULL labels (asked for only when there are at most
    ``MAX_CLASSES`` distinct values, or to name the single one)."""
    column = f"t.{session.quote_ident(label)}"
    rows = session.query(f"SELECT {column}::text AS value, count(*) AS n "
                         f"{dataset.source('train', f'{column} IS NOT NULL')} GROUP BY 1")
    return {row["value"]: row["n"] for row in rows}


def _copies_of_label(session: Session, dataset: Dataset, label: str, features: list) -> list[str]:
    """Feature columns equal to the label on every train row (as text; NULL equals NULL)."""
    if not features:
        return []
    q = session.quote_ident
    checks = ", ".join(f"bool_and(t.{q(c['name'])}::text IS NOT DISTINCT FROM t.{q(label)}::text) AS c{i}"
                       for i, c in enumerate(features))
    row = session.query(f"SELECT {checks} {dataset.source('train')}")[0]
    return [c["name"] for i, c in enumerate(features) if row[f"c{i}"]]


def _auto_kind(label: str, column: dict, distinct: int, labelled: int, numeric: bool) -> str:
    is_boolean = column["sql_type"] == "boolean"
    if is_boolean or distinct == 2:
        return "binary"
    classy = column["enum_oid"] is not None or not numeric or column["sql_type"] in INTEGER_TYPES
    if classy and distinct <= MAX_CLASSES and distinct <= max(2, MAX_CLASS_SHARE * labelled):
        return "multiclass"
    if numeric:
        return "regression"
    raise TrailsError(f"cannot tell the task of label \"{label}\" ({column['sql_type']}): it has "
                      f"{distinct} distinct values in {labelled} train rows",
                      detail=f"task 'auto' makes a text label multiclass when it has at most {MAX_CLASSES} "
                             f"values, at most {MAX_CLASS_SHARE:.0%} of the rows",
                      hint="choose: task => 'multiclass' (one class per value) or cast the column to a "
                           "number in a view and use task => 'regression'")


def _ordered_classes(values: list, column: dict, session: Session) -> list:
    """Class order: an enum's declared order, integers numerically, others as text."""
    if column["enum_oid"] is not None:
        order = [r["v"] for r in session.query(
            "SELECT enumlabel::text AS v FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
            [column["enum_oid"]], ["oid"])]
        return [v for v in order if v in values]
    if column["sql_type"] in INTEGER_TYPES:
        return sorted(values, key=int)
    return sorted(values)


def resolve_task(session: Session, dataset: Dataset, label: str, column: dict, features: list,
                 requested: str = "auto") -> tuple[Task, list[str]]:
    """The label's :class:`Task` and the notes to show the user (dropped rows and classes,
    how the positive class was chosen). See the module docstring.

    Args:
        column: the label's ``{name, sql_type, category, enum_oid}`` (:func:`table_columns`).
        features: the other columns, same form (checked for copies of the label).
        requested: ``auto``, ``binary``, ``multiclass`` or ``regression``.

    Raises:
        TrailsError: for each refusal in the module docstring.
    """
    numeric = column["category"] == "N"
    summary = _label_summary(session, dataset, label, numeric)
    rows, labelled, distinct = summary["rows"], summary["labelled"], summary["distinct_values"]
    if labelled == 0:
        raise TrailsError(f"label column \"{label}\" has no non-NULL value in the train split",
                          detail=f"{rows} train rows, all with a NULL label",
                          hint="check that the table has rows and that label => names the right column")
    notes = []
    if labelled < rows:
        notes.append(f"{rows - labelled} of {rows} train rows have a NULL label \"{label}\" and are left out "
                     "(as are valid and test rows with a NULL label)")
    if distinct == 1:
        value = _class_counts(session, dataset, label)
        raise TrailsError(f"label column \"{label}\" has a single value in the train split",
                          detail=f"all {labelled} labelled train rows are {next(iter(value))!r}",
                          hint="a model needs at least two classes (or a varying numeric target) to learn")
    copies = _copies_of_label(session, dataset, label, features)
    if copies:
        raise TrailsError(f"column \"{copies[0]}\" is a copy of the label \"{label}\"",
                          detail=f"on every train row, {', '.join(copies)} equals the label: it would leak "
                                 "the answer into the features",
                          hint="select from a view without that column, or choose another label")
    kind = _auto_kind(label, column, distinct, labelled, numeric) if requested == "auto" else requested

    if kind == "regression":
        if not numeric:
            raise TrailsError(f"task 'regression' needs a numeric label, but \"{label}\" is {column['sql_type']}",
                              hint="use task => 'multiclass', or cast the column to a number in a view")
        std = float(summary["std"] or 0.0)
        return Task("regression", (), float(summary["mean"] or 0.0), std if std > 0 else 1.0), notes

    if distinct == labelled and labelled > MIN_CLASS_ROWS:
        raise TrailsError(f"label column \"{label}\" looks like a key: all {labelled} train values are distinct",
                          hint="a classifier needs repeated classes; for a numeric target use task => 'regression'")
    if distinct > MAX_CLASSES:
        raise TrailsError(f"task '{kind}' of label \"{label}\" ({column['sql_type']}), which has {distinct} "
                          f"distinct values, more than {MAX_CLASSES}",
                          hint="task => 'regression' for a numeric target, or group the values in a view")
    counts = _class_counts(session, dataset, label)
    rare = {value: n for value, n in counts.items() if n < MIN_CLASS_ROWS}
    kept = [value for value in counts if value not in rare]
    if requested == "auto" and len(kept) == 2:
        kind = "binary"
    if kind == "binary" and len(kept) > 2:
        raise TrailsError(f"task 'binary' of label \"{label}\" ({column['sql_type']}), which has {len(kept)} "
                          f"classes", detail="classes: " + ", ".join(sorted(kept)[:20]),
                          hint="task => 'multiclass' for more than two classes")
    if rare and len(kept) >= 2:
        listed = ", ".join(f"'{value}' ({n} row{'s' if n != 1 else ''})"
                           for value, n in sorted(rare.items(), key=lambda x: (x[1], x[0])))
        notes.append(f"class{'es' if len(rare) > 1 else ''} of \"{label}\" with fewer than {MIN_CLASS_ROWS} "
                     f"train rows left out: {listed}")
    elif rare:
        raise TrailsError(f"label column \"{label}\" has fewer than two classes with {MIN_CLASS_ROWS} or more "
                          "train rows",
                          detail=", ".join(f"'{v}': {n} rows" for v, n in sorted(counts.items())),
                          hint="a classifier needs at least two classes with enough rows to learn and evaluate")
    if kind == "binary":
        if set(kept) <= {"0", "1"} or set(kept) <= {"false", "true"}:
            negative, positive = ("0", "1") if set(kept) <= {"0", "1"} else ("false", "true")
        else:
            positive = min(kept, key=lambda v: (counts[v], v))
            negative = next(v for v in kept if v != positive)
            notes.append(f"label \"{label}\": positive class is its less frequent value '{positive}' "
                         f"({counts[positive]} train rows), '{negative}' is negative")
        return Task("binary", (negative, positive)), notes
    return Task("multiclass", tuple(_ordered_classes(kept, column, session))), notes
