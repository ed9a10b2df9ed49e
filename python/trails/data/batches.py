"""Read a dataset's rows in chunks and encode them with its layout.

The one reader behind both paths: in the database it runs on an SPI session, out of it
(:mod:`trails.data.pg`) on a psycopg2 one. Identical rows give identical arrays, whichever
reader (columns or rows) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from trails.config import load_config
from trails.data.columnar import columnar_source, iter_columnar
from trails.data.dataset import Dataset
from trails.data.layout import Layout
from trails.data.session import Session
from trails.errors import TrailsError

READERS = ("columns", "rows")


@dataclass
class EncodedRows:
    """``ids`` int64 (B, F), ``values`` float32 (B, F), ``labels`` (B,): int64 class indices, or
    float32 standardised targets (regression)."""

    ids: np.ndarray
    values: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def concatenate(cls, parts: list, n_fields: int) -> "EncodedRows":
        if not parts:
            return cls(np.empty((0, n_fields), np.int64), np.empty((0, n_fields), np.float32),
                       np.empty(0, np.int64))
        return cls(np.concatenate([p.ids for p in parts]),
                   np.concatenate([p.values for p in parts]),
                   np.concatenate([p.labels for p in parts]))


def iter_encoded(session: Session, dataset: Dataset, layout: Layout, split: str,
                 limit: int | None = None, chunk_rows: int | None = None,
                 ordered: bool = False, reader: str | None = None) -> Iterator[EncodedRows]:
    """Yield the rows of ``split`` encoded, about ``chunk_rows`` at a time (``[data] chunk_rows``).

    ``reader`` (``[data] reader``): ``columns`` — PostgreSQL aggregates each chunk into one
    value per column (:mod:`trails.data.columnar`; rows in ``ctid`` order; a split that is a
    view, a foreign or a partitioned table is read as rows, and so is a ``limit`` under
    ``chunk_rows``: a ``LIMIT`` reads fewer rows than a chunk of pages); ``rows`` — a cursor
    over the rows, a Python object per value. Both give the same arrays for the same rows.

    The row reader returns rows in the order of a sequential scan: the first ``limit`` rows
    are the table's first rows (unless a concurrent scan of a table larger than a quarter of
    shared_buffers makes PostgreSQL start in the middle); ``ordered`` forces ``ORDER BY ctid``
    — exact, but it reads and sorts the whole split first (ignored for a split the column
    reader leaves to the row reader: a view has no ctid). The column reader is always exact.
    """
    config = load_config()
    chunk_rows = chunk_rows or config.getint("data", "chunk_rows")
    reader = reader or config.get("data", "reader")
    if reader not in READERS:
        raise TrailsError(f"unknown reader {reader!r}", hint=f"[data] reader is one of: {', '.join(READERS)}")
    columns = reader == "columns" and (limit is None or limit >= chunk_rows)  # a LIMIT reads fewer rows
    source = columnar_source(session, dataset, split, chunk_rows) if columns else None
    if source is not None:
        for arrays in iter_columnar(session, source, dataset, layout, split, limit):
            yield EncodedRows(*arrays)
        return
    if columns:  # not a heap: no ctid to order by
        ordered = False
    sql = layout.select_sql(dataset, split, session.quote_ident, limit=limit, ordered=ordered)
    for columns in session.chunks(sql, chunk_rows):
        yield EncodedRows(*layout.encode(columns))


def read_encoded(session: Session, dataset: Dataset, layout: Layout, split: str,
                 limit: int | None = None, ordered: bool = False, reader: str | None = None) -> EncodedRows:
    """All (or the first ``limit``) rows of ``split``, encoded, in one :class:`EncodedRows`
    (``reader`` as for :func:`iter_encoded`)."""
    parts = list(iter_encoded(session, dataset, layout, split, limit, ordered=ordered, reader=reader))
    return EncodedRows.concatenate(parts, layout.n_fields)
