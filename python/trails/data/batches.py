"""Read a dataset's rows in chunks and encode them with its layout.

The one reader behind both paths: in the database it runs on an SPI session, out of it
(:mod:`trails.data.pg`) on a psycopg2 one. Identical rows give identical arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from trails.config import load_config
from trails.data.dataset import Dataset
from trails.data.layout import Layout
from trails.data.session import Session


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
                 ordered: bool = False) -> Iterator[EncodedRows]:
    """Yield the rows of ``split`` encoded, ``chunk_rows`` at a time (``[data] chunk_rows``).

    Rows come in the order of a sequential scan: the first ``limit`` rows are the table's
    first rows, the same for SPI and psycopg2 (unless a concurrent scan of a table larger
    than a quarter of shared_buffers makes PostgreSQL start in the middle). ``ordered``
    forces ``ORDER BY ctid`` — exact, but it reads and sorts the whole split first.
    """
    chunk_rows = chunk_rows or load_config().getint("data", "chunk_rows")
    sql = layout.select_sql(dataset, split, session.quote_ident, limit=limit, ordered=ordered)
    for columns in session.chunks(sql, chunk_rows):
        yield EncodedRows(*layout.encode(columns))


def read_encoded(session: Session, dataset: Dataset, layout: Layout, split: str,
                 limit: int | None = None, ordered: bool = False) -> EncodedRows:
    """All (or the first ``limit``) rows of ``split``, encoded, in one :class:`EncodedRows`."""
    parts = list(iter_encoded(session, dataset, layout, split, limit, ordered=ordered))
    return EncodedRows.concatenate(parts, layout.n_fields)
