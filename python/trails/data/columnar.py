"""The column reader: PostgreSQL hands each chunk out as one value per column.

One query streams a split (:func:`chunk_sql`), or every row of any table for
``trails.predict_table`` (:func:`table_chunk_sql`, with the table's key), in chunks of whole
heap pages. For each chunk, a ``LATERAL``
subquery reads its pages with a TID range scan (physical order: the rows of a sequential scan,
without its synchronised-scan start) and aggregates every column into one ``bytea``, in the
cheapest form that keeps it exact (:func:`plan_columns`):

* ``float8`` — numeric fields, smallint/integer categories, a regression label, an integer
  class label: big-endian float8 (``float8send``), NULL as NaN;
* ``hash4`` — enum categories and labels: ``hashenum`` as big-endian int4, NULL as a hash no
  label of the type has (:class:`~trails.data.codes.HashCodes`);
* ``text`` — other categories and labels: text joined by ``\\x1f``, NULL as ``''``; a
  column whose values hold ``\\x1f`` is read again from that chunk on as ``bytes`` (UTF-8
  joined by ``\\x00``, which text never holds; ``convert_to`` costs more per value).

Python then touches one buffer per column per chunk (:mod:`trails.data.codes`). The arrays
are those of the row reader (:meth:`~trails.data.layout.Layout.encode`) for the same rows,
bit for bit.

The query is one statement, so one snapshot: the rows of a cursor over ``SELECT ... FROM
split`` (but for a column read again as ``bytes``: the rest of the split is a second
statement). It runs through SPI and psycopg2 alike (a cursor fetching one chunk a time). Only
plain tables and materialised views have pages to range over; for a view, a foreign or a
partitioned table :func:`columnar_source` returns None and the caller reads rows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from trails.data.codes import HashCodes, NumberCodes, SeparatorInValues, TextCodes
from trails.data.dataset import Dataset
from trails.data.layout import Layout, table_columns
from trails.data.session import Session

PAGED_RELKINDS = ("r", "m")  # heap tables and materialised views: ctid ranges work
SAMPLE_PAGES = 8  # pages counted to estimate rows per page of a table never analysed
EXACT_FLOAT_INTEGERS = ("smallint", "integer")  # every value exact as float8


@dataclass(frozen=True)
class ColumnarSource:
    """A split that the column reader can read: its table and how many pages make a chunk."""

    table: str  # quoted, schema-qualified
    pages_per_chunk: int


def columnar_source(session: Session, dataset: Dataset, split: str, chunk_rows: int) -> ColumnarSource | None:
    """:func:`paged_source` of the table holding ``split``."""
    return paged_source(session, dataset.table(split), chunk_rows)


def paged_source(session: Session, table: str, chunk_rows: int) -> ColumnarSource | None:
    """The (quoted) table and its chunk size in pages (about ``chunk_rows`` rows, from the
    planner's rows per page, or a count of the first pages of a table never analysed); None
    when the table is not a heap (a view, a foreign or a partitioned table)."""
    rows = session.query("SELECT c.relkind::text AS kind, c.reltuples::float8 AS tuples, c.relpages AS pages"
                         " FROM pg_class c WHERE c.oid = $1::regclass", [table], ["text"])
    if not rows or rows[0]["kind"] not in PAGED_RELKINDS:
        return None
    tuples, pages = rows[0]["tuples"], rows[0]["pages"]
    if tuples > 0 and pages > 0:
        per_page = tuples / pages
    else:
        counted = session.query(f"SELECT count(*) AS n FROM {table} AS t"
                                f" WHERE t.ctid < '({SAMPLE_PAGES},0)'::tid")[0]["n"]
        per_page = max(1.0, counted / SAMPLE_PAGES)
    return ColumnarSource(table, max(1, round(chunk_rows / per_page)))


@dataclass(frozen=True)
class Column:
    """How one column travels: ``expression`` (a value per row, from ``t``), the ``separator``
    between rows, the ``wire`` (float8, hash4, text or bytes) and ``codes`` turning a chunk's
    buffer into ids (None: a numeric field or a regression label, decoded by the layout)."""

    expression: str
    separator: str
    wire: str
    codes: object | None = None

    def decode(self, data, n: int):
        """The ``n`` values in ``data`` (bytes-like or str; None when ``n`` is 0): float64
        values for a numeric column, else int64 ids.

        Raises:
            SeparatorInValues: a ``text`` value holds ``\\x1f``.
        """
        if self.wire in TEXT_SEPARATORS:
            return self.codes.ids(data, n, TEXT_SEPARATORS[self.wire])
        x = np.frombuffer(data or b"", dtype=">f8" if self.wire == "float8" else ">i4")
        if len(x) != n:
            raise ValueError(f"expected {n} values, the buffer holds {len(x)}")
        x = x.astype(np.float64 if self.wire == "float8" else np.int32)
        return x if self.codes is None else self.codes.ids(x)


TEXT_SEPARATORS = {"text": 0x1F, "bytes": 0x00}

KEY_SEPARATOR = "\x1f"
"""Between the keys of a chunk (:func:`table_chunk_sql`): bigint text never holds it."""


def _number_column(column: str, codes=None) -> Column:
    return Column(f"float8send(coalesce({column}::float8, 'NaN'))", "''::bytea", "float8", codes)


def _text_column(column: str, codes: TextCodes, as_bytes: bool) -> Column:
    if as_bytes:
        return Column(f"convert_to(coalesce({column}::text, ''), 'UTF8')", "'\\x00'::bytea", "bytes", codes)
    return Column(f"coalesce({column}::text, '')", "E'\\x1f'", "text", codes)


def _integer_texts(values) -> bool:
    """Whether every value is an integer's text as PostgreSQL prints it (``'-3'``, not ``'03'``)."""
    try:
        return all(str(int(value)) == value for value in values)
    except ValueError:
        return False


def _category_column(column: str, info: dict | None, enum_hashes: dict, codes_args: tuple,
                     as_bytes: bool) -> Column:
    """The cheapest exact way for a category: float8 for smallint/integer (when every value of
    the dictionary is an integer as ``::text`` prints it: a table scored with a model trained
    on text in that column is read as text), hash4 for an enum whose labels' hashes differ
    (``enum_hashes``: type oid → {label: hash}), text otherwise. ``codes_args``: ``(values,
    ids, missing, unknown)`` of its dictionary."""
    if info is not None and info["sql_type"] in EXACT_FLOAT_INTEGERS and _integer_texts(codes_args[0]):
        return _number_column(column, NumberCodes(*codes_args))
    if info is not None and info["enum_oid"] is not None:
        hashes = enum_hashes.get(info["enum_oid"], {})
        null_hash = next(h for h in range(len(hashes) + 1) if h not in set(hashes.values()))
        try:
            codes = HashCodes(*codes_args, hashes, null_hash)
            return Column(f"int4send(coalesce(hashenum({column}), {null_hash}))", "''::bytea", "hash4", codes)
        except ValueError:  # two labels share a hash: text is exact
            pass
    return _text_column(column, TextCodes(*codes_args), as_bytes)


def plan_columns(session: Session, layout: Layout, table: str, quote_ident,
                 as_bytes: frozenset = frozenset(), with_label: bool = True) -> list[Column]:
    """One :class:`Column` per field of ``layout``, then (``with_label``) the label's, for the
    (quoted) ``table`` as its columns are typed now; text columns whose index is in
    ``as_bytes`` travel as ``bytes``."""
    infos = {c["name"]: c for c in table_columns(session, table)}
    enum_types = sorted({c["enum_oid"] for c in infos.values() if c["enum_oid"] is not None})
    enum_hashes: dict = {}
    if enum_types:  # every label of every enum type now, with its hashenum
        for r in session.query("SELECT e.enumtypid AS t, e.enumlabel::text AS v, hashoid(e.oid) AS h"
                               " FROM pg_enum e WHERE e.enumtypid = ANY ($1::oid[])", [enum_types], ["oid[]"]):
            enum_hashes.setdefault(r["t"], {})[r["v"]] = r["h"]
    planned = []
    for i, fld in enumerate(layout.fields):
        column = f"t.{quote_ident(fld.name)}"
        if fld.kind == "numeric":
            planned.append(_number_column(column))
        else:
            codes_args = (*fld.dictionary(), fld.missing_id, fld.unknown_id)
            planned.append(_category_column(column, infos.get(fld.name), enum_hashes, codes_args, i in as_bytes))
    if not with_label:
        return planned
    label, task = f"t.{quote_ident(layout.label)}", layout.task
    if task.is_classification:
        codes_args = (task.classes, range(len(task.classes)), -1, -1)
        planned.append(_category_column(label, infos.get(layout.label), enum_hashes, codes_args,
                                        layout.n_fields in as_bytes))
    else:
        planned.append(_number_column(label))
    return planned


PAGE_RANGE = "t.ctid >= ('(' || g.p || ',0)')::tid AND t.ctid < ('(' || (g.p + $2) || ',0)')::tid"
"""The rows of one chunk: pages ``g.p`` to ``g.p + $2 − 1``."""


def _paged_sql(columns: list[Column], source: str, extra: tuple = ()) -> str:
    """The query returning one row per chunk of pages: ``p`` (its first page), ``n`` (rows
    kept), the ``extra`` aggregates, and ``c0`` .. (each column's values; NULL when ``n`` is
    0). ``source`` is the ``FROM`` text of the rows, holding :data:`PAGE_RANGE`; ``$1`` is the
    table (regclass text), ``$2`` the pages per chunk, ``$3`` the first page read."""
    aggregates = ", ".join(["count(*) AS n", *extra] + [f"string_agg({c.expression}, {c.separator}) AS c{i}"
                                                        for i, c in enumerate(columns)])
    last_page = "pg_relation_size($1::regclass) / current_setting('block_size')::bigint - 1"
    return (f"SELECT g.p, c.* FROM generate_series($3::bigint, {last_page}, $2::bigint) AS g(p)"
            f" CROSS JOIN LATERAL (SELECT {aggregates} {source}) AS c")


def chunk_sql(dataset: Dataset, layout: Layout, split: str, columns: list[Column], quote_ident) -> str:
    """:func:`_paged_sql` of ``split``'s rows that have a label: ``c0`` .. ``c{F}`` the
    fields', then the label's values."""
    label = f"t.{quote_ident(layout.label)}"
    return _paged_sql(columns, dataset.source(split, f"{PAGE_RANGE} AND {layout.task.label_condition(label)}"))


def table_chunk_sql(table: str, columns: list[Column], key: str | None) -> str:
    """:func:`_paged_sql` of every row of the (quoted) ``table``; with a ``key`` column (quoted),
    also ``k``: its values as bigint text joined by ``\\x1f``, NULL as ``''``."""
    separator = f"E'\\x{ord(KEY_SEPARATOR):02x}'"
    extra = (f"string_agg(coalesce(t.{key}::bigint::text, ''), {separator}) AS k",) if key else ()
    return _paged_sql(columns, f"FROM {table} AS t WHERE {PAGE_RANGE}", extra)


class SeparatorInText(Exception):
    """Column ``column`` (its index in :func:`plan_columns`) has a value holding ``\\x1f``."""

    def __init__(self, column: int):
        super().__init__(column)
        self.column = column


def decode_fields(layout: Layout, columns: list[Column], row: dict) -> tuple:
    """One chunk row of :func:`_paged_sql` → ids int64 (n, F), values float32 (n, F) of the
    layout's fields (the first F columns), and the decoded columns after them.

    Raises:
        SeparatorInText: a text column's values hold its separator.
    """
    n = int(row["n"])
    decoded = []
    for i, column in enumerate(columns):
        try:
            decoded.append(column.decode(row[f"c{i}"], n))
        except SeparatorInValues:
            raise SeparatorInText(i) from None
    ids = np.empty((n, layout.n_fields), dtype=np.int64)
    values = np.ones((n, layout.n_fields), dtype=np.float32)
    for i, fld in enumerate(layout.fields):
        if fld.kind == "numeric":
            ids[:, i], values[:, i] = fld.encode_numbers(decoded[i])
        else:
            ids[:, i] = decoded[i]
    return ids, values, decoded[layout.n_fields:]


def decode_chunk(layout: Layout, columns: list[Column], row: dict) -> tuple:
    """One chunk row of :func:`chunk_sql` → ids int64 (n, F), values float32 (n, F), labels
    (n,) (int64 class indices, or float32 standardised targets), as ``Layout.encode``.

    Raises:
        SeparatorInText: a text column's values hold its separator.
    """
    ids, values, (labels,) = decode_fields(layout, columns, row)
    return ids, values, labels if layout.task.is_classification else layout.task.encode_label_numbers(labels)


def stream_chunks(session: Session, source: ColumnarSource, plan, decode) -> Iterator:
    """``decode(columns, row)`` of each non-empty chunk row of ``source``'s table, in physical
    order. ``plan(as_bytes)`` gives ``(columns, sql)`` — the columns (text columns whose index
    is in ``as_bytes`` as ``bytes``) and their :func:`_paged_sql` query; a chunk whose text
    holds the separator is read again, from that chunk on, with that column as ``bytes``."""
    first_page, as_bytes = 0, frozenset()
    while first_page is not None:
        columns, sql = plan(as_bytes)
        chunks = session.stream(sql, [source.table, source.pages_per_chunk, first_page],
                                ["text", "bigint", "bigint"])
        first_page = None
        with contextlib.closing(chunks):
            for row in chunks:
                if not row["n"]:
                    continue
                try:
                    decoded = decode(columns, row)
                except SeparatorInText as separator:
                    first_page, as_bytes = row["p"], as_bytes | {separator.column}
                    break
                yield decoded


def iter_columnar(session: Session, source: ColumnarSource, dataset: Dataset, layout: Layout, split: str,
                  limit: int | None = None) -> Iterator[tuple]:
    """``(ids, values, labels)`` of each non-empty chunk of ``split`` in physical order; the
    first ``limit`` rows when given (the chunk holding the limit is cut)."""

    def plan(as_bytes):
        columns = plan_columns(session, layout, source.table, session.quote_ident, as_bytes)
        return columns, chunk_sql(dataset, layout, split, columns, session.quote_ident)

    rows = 0
    chunks = stream_chunks(session, source, plan, lambda columns, row: decode_chunk(layout, columns, row))
    with contextlib.closing(chunks):
        for ids, values, labels in chunks:
            if limit is not None and rows + len(labels) >= limit:
                keep = limit - rows
                yield ids[:keep], values[:keep], labels[:keep]
                return
            rows += len(labels)
            yield ids, values, labels
