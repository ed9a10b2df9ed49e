"""Every row of any table, encoded with a model's layout, a chunk at a time: what
``trails.predict_table`` scores.

A heap table is read by the column reader (:mod:`trails.data.columnar`: one value per column
per chunk of pages, ~4x faster than rows here) when ``[data] reader`` is ``columns``; a view, a
foreign or a partitioned table by the row reader. Each chunk comes with its rows' keys: the
table's ``id`` column (as bigint; None for NULL) when it has one, else the row's number in the
order read (1, 2, ...). Both readers give the same keys, ids and values for the same rows read
in the same order: the column reader reads pages in physical order; the row reader's
sequential scan does too, but for a table larger than a quarter of shared_buffers scanned by
another query at the same time (PostgreSQL then starts it mid-table), which moves row numbers.
A chunk whose text holds the column reader's separator is read again from there by a second
statement — in the same snapshot inside ``trails.predict_table`` (a STABLE function); through
psycopg2 under READ COMMITTED, in a newer one.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from trails.config import load_config
from trails.data.columnar import (KEY_SEPARATOR, decode_fields, paged_source, plan_columns, stream_chunks,
                                  table_chunk_sql)
from trails.data.layout import Layout
from trails.data.session import Session


def iter_table(session: Session, layout: Layout, table: str, key: str | None,
               chunk_rows: int | None = None) -> Iterator[tuple[list, np.ndarray, np.ndarray]]:
    """``(keys, ids, values)`` per chunk of about ``chunk_rows`` rows (``[data] chunk_rows``) of
    the (quoted) ``table``, which holds every field of ``layout``: keys a list (ints; None for a
    NULL key), ids int64 ``(n, F)``, values float32 ``(n, F)``. ``key``: the (unquoted) key
    column, or None for row numbers."""
    config = load_config()
    chunk_rows = chunk_rows or config.getint("data", "chunk_rows")
    source = paged_source(session, table, chunk_rows) if config.get("data", "reader") == "columns" else None
    if source is not None:
        yield from _columns(session, layout, source, key)
    else:
        yield from _rows(session, layout, table, key, chunk_rows)


def _columns(session: Session, layout: Layout, source, key: str | None) -> Iterator[tuple]:
    quoted_key = session.quote_ident(key) if key else None

    def plan(as_bytes):
        columns = plan_columns(session, layout, source.table, session.quote_ident, as_bytes, with_label=False)
        return columns, table_chunk_sql(source.table, columns, quoted_key)

    def decode(columns, row):
        ids, values, _ = decode_fields(layout, columns, row)
        return _keys(row, len(ids)) if key else None, ids, values

    read = 0
    chunks = stream_chunks(session, source, plan, decode)
    with contextlib.closing(chunks):
        for keys, ids, values in chunks:
            yield (keys if key else list(range(read + 1, read + len(ids) + 1))), ids, values
            read += len(ids)


def _keys(row: dict, n: int) -> list:
    """A chunk's ``n`` keys from its ``k`` (see :func:`~trails.data.columnar.table_chunk_sql`):
    ints, None for NULL."""
    texts = (row["k"] or "").split(KEY_SEPARATOR) if n else []
    if len(texts) != n:
        raise ValueError(f"expected {n} keys, the chunk holds {len(texts)}")
    return [int(text) if text else None for text in texts]


def _rows(session: Session, layout: Layout, table: str, key: str | None, chunk_rows: int) -> Iterator[tuple]:
    sql = layout.select_features_sql(table, session.quote_ident, key, {f.name for f in layout.fields})
    for chunk in session.chunks(sql, chunk_rows):
        ids, values, _ = layout.encode(chunk)
        yield chunk["key"], ids, values
