"""Resolve a dataset name to the tables (or hash-split table) holding its splits.

``'frappe'`` resolves to ``frappe_train``, ``frappe_valid`` and ``frappe_test`` when all
three exist; otherwise the name must be one table, split deterministically 70/20/10
(``[layout] split_percent``) by a hash of each row's contents. Names are identifiers in the
``search_path``, always quoted (``quote_ident``): a name is never spliced into SQL raw.

A name may be schema-qualified: ``'public.frappe'`` resolves to ``public.frappe_train``,
``_valid``, ``_test``, or the single table ``public.frappe``. Each part is taken literally, as a
one-part name is (case kept); a part may be double-quoted to hold a dot or a quote
(``'"my.schema".frappe'``, ``'public."a.b"'``; ``""`` is a quote inside). The whole name as one
identifier is tried first, so a table whose name holds a dot (``'a.b'`` for the table "a.b")
resolves as it always did.
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
        table = self.table(split)
        conditions = [condition] if condition else []
        if self.split_bounds is not None:
            low, high = self.split_bounds[split]
            bucket = "(hashtext(t::text) & 2147483647) % 100"
            conditions.insert(0, f"{bucket} >= {low} AND {bucket} < {high}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"FROM {table} AS t{where}"

    def table(self, split: str) -> str:
        """The quoted table holding ``split``'s rows (the one table of a hash split).

        Raises:
            TrailsError: for a split that is not train, valid or test.
        """
        if split not in SPLITS:
            raise TrailsError(f"unknown split {sql_text(split)}", hint=f"valid splits: {', '.join(SPLITS)}")
        return self.tables[split]

    @property
    def train_table(self) -> str:
        return self.tables["train"]


def _regclass(session: Session, schema: str | None, name: str) -> str | None:
    """The table ``schema.name`` (``name`` in the search_path when ``schema`` is None) as
    ``regclass`` text, or None when there is no such table, view or foreign table."""
    qualified = session.quote_ident(name) if schema is None else \
        f"{session.quote_ident(schema)}.{session.quote_ident(name)}"
    rows = session.query(
        "SELECT c.oid::regclass::text AS name FROM pg_class c"
        " WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        [qualified], ["text"])
    return rows[0]["name"] if rows else None


def name_parts(name: str) -> list[str] | None:
    """The dot-separated parts of ``name``, each literal or double-quoted (``""`` inside quotes
    is one quote): ``'public.frappe'`` → ``['public', 'frappe']``, ``'"a.b".c'`` → ``['a.b', 'c']``,
    ``'"x"'`` → ``['x']``. None when ``name`` is not of that form (an empty part, an unclosed
    or misplaced quote)."""
    parts, part, quoted, index = [], "", False, 0
    while index < len(name):
        char = name[index]
        if quoted:
            if char == '"' and name[index + 1:index + 2] == '"':
                part, index = part + '"', index + 2
                continue
            if char == '"':
                quoted = False
                if index + 1 < len(name) and name[index + 1] != ".":
                    return None  # text after a closing quote
            else:
                part += char
        elif char == '"':
            if part:
                return None  # a quote inside an unquoted part
            quoted = True
        elif char == ".":
            if not part:
                return None
            parts.append(part)
            part = ""
        else:
            part += char
        index += 1
    if quoted or not part:
        return None
    return parts + [part]


def known_datasets(session: Session, limit: int = 20, schema: str | None = None) -> list[str]:
    """Names a user could pass: split-table families and plain tables in the search_path, or
    in ``schema`` (then qualified: ``schema.name``)."""
    if schema is None:
        rows = session.query(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname = ANY (current_schemas(false))"
            " AND n.nspname <> 'trails' ORDER BY 1")
    else:
        rows = session.query(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname = $1 ORDER BY 1", [schema], ["text"])
    names = [row["name"] for row in rows]
    families = {name[:-len("_train")] for name in names if name.endswith("_train")
                and f"{name[:-6]}_valid" in names and f"{name[:-6]}_test" in names}
    split_tables = {f"{family}_{split}" for family in families for split in SPLITS}
    plain = [name for name in names if name not in split_tables]
    known = sorted(families | set(plain))[:limit]
    return known if schema is None else [f"{schema}.{name}" for name in known]


def _find(session: Session, name: str, schema: str | None, table: str) -> Dataset | None:
    """The dataset ``table`` (in ``schema``, else the search_path) called ``name``, or None."""
    split_tables = {split: _regclass(session, schema, f"{table}_{split}") for split in SPLITS}
    if all(split_tables.values()):
        return Dataset(name, split_tables)
    single = _regclass(session, schema, table)
    if single is None:
        return None
    percents = load_config().get_int_list("layout", "split_percent")
    bounds, start = {}, 0
    for split, percent in zip(SPLITS, percents):
        bounds[split] = (start, start + percent)
        start += percent
    return Dataset(name, {split: single for split in SPLITS}, bounds)


def resolve_dataset(session: Session, name) -> Dataset:
    """The :class:`Dataset` called ``name`` (one identifier in the search_path, or
    ``schema.name``: see the module docstring); raises :class:`TrailsError` if there is none."""
    if not isinstance(name, str) or not name.strip():
        raise TrailsError("dataset must be a non-empty table name",
                          hint="pass a table name, e.g. 'frappe' for frappe_train/_valid/_test")
    dataset = _find(session, name, None, name)
    parts = name_parts(name)
    qualified = parts is not None and parts != [name] and len(parts) <= 2
    if dataset is None and qualified:
        schema, table = (None, parts[0]) if len(parts) == 1 else parts
        dataset = _find(session, name, schema, table)
    if dataset is not None:
        return dataset
    if qualified and len(parts) == 2:
        known, where = known_datasets(session, schema=parts[0]), f"in schema \"{parts[0]}\""
        shown = f"\"{parts[1]}\""
    else:
        known, where, shown = known_datasets(session), "in the search_path", f"\"{name}\""
    table = shown[1:-1]
    raise TrailsError(
        f"dataset \"{name}\" not found",
        detail=f"neither a table {shown} nor tables \"{table}_train\", \"{table}_valid\", "
               f"\"{table}_test\" exist {where}",
        hint=("known datasets: " + ", ".join(known)) if known else
             "load one with scripts/load_dataset.sh frappe, or create a table")


def table_identity(session: Session, dataset: Dataset) -> dict:
    """What names ``dataset``'s rows exactly, for a reader in another session (the refinement
    service): ``{"database", "role", "superuser", "tables": {split: schema-qualified quoted
    name}, "oids": {split: oid}, "split_bounds"}`` as this session sees them."""
    tables, oids = {}, {}
    for split in SPLITS:
        row = session.query(
            "SELECT c.oid::bigint AS oid, format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            [dataset.tables[split]], ["text"])[0]
        tables[split], oids[split] = row["name"], row["oid"]
    who = session.query("SELECT current_database() AS database, current_user AS role,"
                        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser")[0]
    return {"database": who["database"], "role": who["role"], "superuser": bool(who["superuser"]),
            "tables": tables, "oids": oids,
            "split_bounds": {k: list(v) for k, v in dataset.split_bounds.items()} if dataset.split_bounds else None}


def dataset_from_identity(session: Session, name: str, identity: dict) -> Dataset:
    """The :class:`Dataset` a job names by :func:`table_identity`, checked in ``session`` (the
    job's database): each table must exist with that OID under that name, and the job's role
    must be allowed to SELECT from it.

    Raises:
        TrailsError: naming the table and why it cannot be read.
    """
    role = identity.get("role")
    for split in SPLITS:
        table, oid = identity["tables"][split], identity["oids"][split]
        rows = session.query(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name,"
            " CASE WHEN $2::text IS NULL THEN true ELSE has_table_privilege($2::text, c.oid, 'SELECT') END AS readable"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid",
            [oid, role], ["bigint", "text"])
        if not rows or rows[0]["name"] != table:
            raise TrailsError(f"the {split} table {table} (oid {oid}) is not in database "
                              f"\"{session.query('SELECT current_database() AS d')[0]['d']}\" as the job says",
                              detail=f"found {rows[0]['name'] if rows else 'no table'} with that oid",
                              hint="the job must come from a backend of the database it names")
        if not rows[0]["readable"]:
            raise TrailsError(f"role \"{role}\" may not read {table}",
                              hint="a job reads only what the calling role may read: GRANT SELECT on it")
    bounds = identity.get("split_bounds")
    return Dataset(name, dict(identity["tables"]), {k: tuple(v) for k, v in bounds.items()} if bounds else None)
