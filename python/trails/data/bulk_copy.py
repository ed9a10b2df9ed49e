"""Bulk loading through ``COPY ... FROM STDIN`` (never row-by-row INSERT)."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence


def quote_ident(name: str) -> str:
    """SQL identifier quoting, as PostgreSQL's ``quote_ident`` does for any name."""
    return '"' + name.replace('"', '""') + '"'


def copy_rows(cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY ``rows`` (tuples in ``columns`` order; ``None`` = NULL) into ``table``.

    ``table`` is an already quoted name. Returns the number of rows sent.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    for row in rows:
        writer.writerow(["\\N" if value is None else value for value in row])
        count += 1
    buffer.seek(0)
    column_list = ", ".join(quote_ident(column) for column in columns)
    cursor.copy_expert(
        f"COPY {table} ({column_list}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
    return count
