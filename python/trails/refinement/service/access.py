"""What a job may read, and reading it as its caller: the service's security-critical code.

A job from ``model_selection`` names its ``database``, the calling ``role`` and the
schema-qualified tables (with their OIDs) the backend resolved in the caller's session. Here,
in one read-only REPEATABLE READ transaction of that database:

1. each OID must still name that table, and the role must be allowed to SELECT from it
   (:func:`~trails.data.dataset.dataset_from_identity`), or the job fails saying why;
2. the layout is the one the job sent (checked against its label) or the stored one (checked
   against the dataset and label);
3. the tensor cache key names the database, the **role**, the tables, the split bounds, the
   layout and the device — per role, because rows are read as the caller, whose row-level
   security may hide some;
4. before any row is read, the transaction switches to the caller's role when the service's
   role may (``SET LOCAL ROLE``): PostgreSQL then applies the caller's privileges and row-level
   security policies itself.

(A job without ``tables`` — the API used directly — resolves ``dataset`` by name in the DSN's
database.)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg2
import torch
from psycopg2 import sql

from trails.data.dataset import Dataset, dataset_from_identity, resolve_dataset
from trails.data.layout import Layout
from trails.data.layout_store import load_layout
from trails.data.session import PgSession
from trails.errors import TrailsError
from trails.refinement.jobs import JobSpec
from trails.refinement.service.settings import APPLICATION_NAME

__all__ = ["CallerView", "close", "connect", "open_as_caller", "read_as"]


@dataclass(frozen=True)
class CallerView:
    """A job's data as its caller may see it, before any row is read.

    Attributes:
        session: the connection's session (read-only, REPEATABLE READ).
        dataset: the tables, checked (OIDs, the role's SELECT privilege).
        layout: the job's layout, checked against its dataset and label.
        cache_key: what the decoded splits are cached under (the role included).
    """

    session: PgSession
    dataset: Dataset
    layout: Layout
    cache_key: tuple


def connect(dsn: str, database: str | None = None):
    """A connection through ``dsn``, to ``database`` when given (the job's, overriding the DSN's),
    named ``APPLICATION_NAME`` in pg_stat_activity."""
    names = {"application_name": APPLICATION_NAME, **({"dbname": database} if database else {})}
    return psycopg2.connect(dsn, **names)


def close(connection) -> None:
    """End ``connection``'s (read-only) transaction and close it; errors ignored (it may be gone)."""
    with contextlib.suppress(Exception):
        connection.rollback()
    with contextlib.suppress(Exception):
        connection.close()


def open_as_caller(connection, spec: JobSpec, device: torch.device) -> CallerView:
    """Steps 1–3 of the module docstring on ``connection`` (made read-only, REPEATABLE READ:
    the rows counted are the rows read). Raises TrailsError naming what the job may not read."""
    connection.set_session(readonly=True, isolation_level="REPEATABLE READ")
    session = PgSession(connection)
    if spec.tables is not None:
        identity = {"role": spec.role, "tables": spec.tables, "oids": spec.oids, "split_bounds": spec.split_bounds}
        dataset = dataset_from_identity(session, spec.dataset, identity)
    else:
        dataset = resolve_dataset(session, spec.dataset)
    layout = _layout_of(session, spec, dataset)
    database = session.query("SELECT current_database() AS d")[0]["d"]
    # per role too: rows are read as the caller, whose row-level security may hide some
    key = (database, spec.role, tuple(sorted((spec.oids or dataset.tables).items())),
           str(dataset.split_bounds), layout.layout_id, str(device))
    return CallerView(session, dataset, layout, key)


def read_as(connection, role: str | None) -> bool:
    """Make the rest of ``connection``'s transaction read as ``role`` (``SET LOCAL ROLE``), so
    that PostgreSQL itself applies the caller's privileges and row-level security policies to
    the rows read. Possible when the service's role is a member of ``role`` (or a superuser);
    False otherwise (or without a role), and the explicit privilege check of
    :func:`~trails.data.dataset.dataset_from_identity` is what stands."""
    if not role:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT trails_read_as")
        try:
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        except psycopg2.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT trails_read_as")
            return False
        cursor.execute("RELEASE SAVEPOINT trails_read_as")
    return True


def _layout_of(session: PgSession, spec: JobSpec, dataset: Dataset) -> Layout:
    """The layout the job sent (its label checked), else the stored layout ``spec.layout_id``
    (checked against the job's dataset and label)."""
    if spec.layout is not None:
        layout = Layout.from_json(spec.layout, spec.layout_id)
        if layout.label != spec.label:
            raise TrailsError(f"the layout sent encodes label {layout.label!r}, not {spec.label!r}",
                              hint="send the layout of this dataset and label")
        return layout
    rows = session.query("SELECT train_table, label FROM trails.layouts WHERE layout_id = $1",
                         [spec.layout_id], ["bigint"])
    if not rows:
        raise TrailsError(f"layout {spec.layout_id} not found in trails.layouts",
                          hint="create it with trails.data.layout_store.get_or_create_layout")
    if rows[0]["train_table"] != dataset.train_table or rows[0]["label"] != spec.label:
        raise TrailsError(
            f"layout {spec.layout_id} encodes {rows[0]['train_table']} with label "
            f"{rows[0]['label']!r}, not {dataset.train_table} with label {spec.label!r}",
            hint="pass the layout_id of this dataset and label")
    return load_layout(session, spec.layout_id)
