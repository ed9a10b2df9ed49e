"""Out-of-database batch reading: the same rows through psycopg2 (server-side cursor).

The twin of :mod:`trails.data.spi`, used by the refinement service, scripts and benchmarks.
"""

from __future__ import annotations

from trails.data.batches import EncodedRows, read_dataset_rows
from trails.data.session import PgSession


def connect(dsn: str = ""):
    """A psycopg2 connection; the empty DSN uses PGHOST/PGPORT/PGUSER/PGDATABASE like psql."""
    import psycopg2

    return psycopg2.connect(dsn)


def read_batch_pg(connection, dataset: str, n: int | None, split: str = "train",
                  label: str = "label") -> EncodedRows:
    """The first ``n`` rows (all when ``None``) of ``dataset``'s ``split``, encoded."""
    return read_dataset_rows(PgSession(connection), dataset, n, split, label)
