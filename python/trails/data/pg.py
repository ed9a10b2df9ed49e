"""Out-of-database batch reading: rows through psycopg2 (a server-side cursor).

The twin of ``trails.read_batch`` (SPI, in the database), used by the refinement service,
scripts and benchmarks: the same resolution, layout and encoding, another session.
"""

from __future__ import annotations

from trails.data.batches import EncodedRows, read_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.session import PgSession


def connect(dsn: str = ""):
    """A psycopg2 connection; the empty DSN uses PGHOST/PGPORT/PGUSER/PGDATABASE like psql."""
    import psycopg2

    return psycopg2.connect(dsn)


def read_batch_pg(connection, dataset: str, n: int | None, split: str = "train",
                  label: str = "label") -> EncodedRows:
    """The first ``n`` rows (all when ``None``) of ``dataset``'s ``split``, encoded with its
    stored layout (created when new)."""
    session = PgSession(connection)
    resolved = resolve_dataset(session, dataset)
    return read_encoded(session, resolved, get_or_create_layout(session, resolved, label), split, limit=n)
