"""Resolve a dataset name to the tables (or hash-split table) holding its splits.

``'frappe'`` resolves to ``frappe_train``, ``frappe_valid`` and ``frappe_test`` when all
three exist; otherwise the name must be one table, split deterministically 70/20/10
(``[layout] split_percent``) by a hash of each row's contents. Names are identifiers in the
``search_path``, always quoted (``quote_ident``): a name is never spliced into SQL raw.
"""

from __future__ import annotations

from dataclasses import dataclass

from trails.config import load_config
from trails.data.session import Session
from trails.errors import TrailsError, sql_text

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Dataset:
    """Where a dataset's rows live. ``tables`` maps split → quoted, schema-qualified table;
    ``split_bounds`` is set for a single hash-split table (percent bounds per split)."""

    name: str
    tables: dict
    split_bounds: dict | None = None

    def source(self, split: str, condition: str | None = None) -> str:
        """``FROM ... [WHERE ...]`` text selecting the rows of ``split`` (alias ``t``) that
        also satisfy the SQL ``condition`` when given."""
        if split not in SPLITS:
            raise TrailsError(f"unknown split {sql_text(split)}", hint=f"valid splits: {', '.join(SPLITS)}")
        conditions = [condition] if condition else []
        if self.split_bounds is not None:
            low, high = self.split_bounds[split]
            bucket = "(hashtext(t::text) & 2147483647) % 100"
            conditions.insert(0, f"{bucket} >= {low} AND {bucket} < {high}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"FROM {self.tables[split]} AS t{where}"

    @property
    def train_table(self) -> str:
        return self.tables["train"]


def _regclass(session: Session, name: str) -> str | None:
    rows = session.query(
        "SELECT c.oid::regclass::text AS name FROM pg_class c"
        " WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        [session.quote_ident(name)], ["text"])
    return rows[0]["name"] if rows else None


def known_datasets(session: Session, limit: int = 20) -> list[str]:
    """Names a user could pass: split-table families and plain tables in the search_path."""
    rows = session.query(
        "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname = ANY (current_schemas(false))"
        " AND n.nspname <> 'trails' ORDER BY 1")
    names = [row["name"] for row in rows]
    families = {name[:-len("_train")] for name in names if name.endswith("_train")
                and f"{name[:-6]}_valid" in names and f"{name[:-6]}_test" in names}
    split_tables = {f"{family}_{split}" for family in families for split in SPLITS}
    plain = [name for name in names if name not in split_tables]
    return sorted(families | set(plain))[:limit]


def resolve_dataset(session: Session, name) -> Dataset:
    """The :class:`Dataset` called ``name``; raises :class:`TrailsError` if there is none."""
    if not isinstance(name, str) or not name.strip():
        raise TrailsError("dataset must be a non-empty table name",
                          hint="pass a table name, e.g. 'frappe' for frappe_train/_valid/_test")
    split_tables = {split: _regclass(session, f"{name}_{split}") for split in SPLITS}
    if all(split_tables.values()):
        return Dataset(name, split_tables)
    table = _regclass(session, name)
    if table is None:
        known = known_datasets(session)
        raise TrailsError(
            f"dataset \"{name}\" not found",
            detail=f"neither a table \"{name}\" nor tables \"{name}_train\", \"{name}_valid\", "
                   f"\"{name}_test\" exist in the search_path",
            hint=("known datasets: " + ", ".join(known)) if known else
                 "load one with scripts/load_dataset.sh frappe, or create a table")
    percents = load_config().get_int_list("layout", "split_percent")
    bounds, start = {}, 0
    for split, percent in zip(SPLITS, percents):
        bounds[split] = (start, start + percent)
        start += percent
    return Dataset(name, {split: table for split in SPLITS}, bounds)
