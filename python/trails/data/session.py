"""One query interface over the two ways trails reaches PostgreSQL.

In the database, PL/Python's ``plpy`` runs queries through SPI; out of it (the refinement
service, scripts, benchmarks) a psycopg2 connection does. Everything above this module —
dataset resolution, layouts, batch reading — is written once against :class:`Session`.

Queries use PostgreSQL's ``$1, $2 ...`` placeholders on both paths.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from abc import ABC, abstractmethod
from typing import Iterator, Sequence

Row = dict
Columns = dict  # {column name: list of values}, one chunk of rows


class Session(ABC):
    """Run SQL; the two subclasses differ only in how rows arrive."""

    @abstractmethod
    def query(self, sql: str, args: Sequence = (), types: Sequence[str] = ()) -> list[Row]:
        """All result rows as dicts. ``types`` are the PostgreSQL types of ``args``."""

    @abstractmethod
    def chunks(self, sql: str, chunk_rows: int) -> Iterator[Columns]:
        """Stream the rows of ``sql`` (no arguments) as column dicts of ≤ ``chunk_rows`` rows."""

    @abstractmethod
    def stream(self, sql: str, args: Sequence = (), types: Sequence[str] = ()) -> Iterator[Row]:
        """The rows of ``sql`` one at a time as dicts, fetched one by one from a cursor (for a
        query whose every row is large, e.g. a chunk of a column reader)."""

    @abstractmethod
    def atomic(self):
        """Context manager: what runs inside commits or rolls back as one unit."""

    def notice(self, message: str) -> None:
        """Tell the user about progress (a NOTICE in psql; a no-op out of the database)."""

    @staticmethod
    def quote_ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    @staticmethod
    def quote_literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"


class SpiSession(Session):
    """Inside a PL/Python function: ``plpy`` and its SPI cursors."""

    def __init__(self, plpy):
        self.plpy = plpy
        self._plans = {}

    def query(self, sql, args=(), types=()):
        if not args:
            return list(self.plpy.execute(sql))
        return list(self.plpy.execute(self._plan(sql, types), list(args)))

    def _plan(self, sql, types):
        """A prepared plan, kept for the session's life (per ``(sql, types)``)."""
        key = (sql, tuple(types))
        if key not in self._plans:
            self._plans[key] = self.plpy.prepare(sql, list(types))
        return self._plans[key]

    def stream(self, sql, args=(), types=()):
        cursor = self.plpy.cursor(self._plan(sql, types), list(args))
        try:
            while True:
                result = cursor.fetch(1)
                if not result:
                    return
                yield result[0]
        finally:
            cursor.close()

    def chunks(self, sql, chunk_rows):
        cursor = self.plpy.cursor(sql)
        try:
            while True:
                result = cursor.fetch(chunk_rows)
                if not result:
                    return
                names = list(result[0].keys())
                yield {name: [row[name] for row in result] for name in names}
        finally:
            cursor.close()

    def atomic(self):
        return self.plpy.subtransaction()

    def notice(self, message):
        self.plpy.notice(message)

    def quote_ident(self, name):
        return self.plpy.quote_ident(name)

    def quote_literal(self, value):
        return self.plpy.quote_literal(value)


_PLACEHOLDER = re.compile(r"\$(\d+)")


def to_pyformat(sql: str) -> str:
    """``$1`` → ``%(p1)s`` (and ``%`` → ``%%``) for psycopg2."""
    return _PLACEHOLDER.sub(r"%(p\1)s", sql.replace("%", "%%"))


def _put(ready: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; whether it was put."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


class PgSession(Session):
    """Out of the database: a psycopg2 connection; streaming uses a server-side cursor."""

    _cursor_number = 0

    def __init__(self, connection):
        self.connection = connection

    def query(self, sql, args=(), types=()):
        import psycopg2.extras

        with self.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(to_pyformat(sql), {f"p{i}": arg for i, arg in enumerate(args, 1)})
            return [dict(row) for row in cursor.fetchall()] if cursor.description else []

    def chunks(self, sql, chunk_rows):
        PgSession._cursor_number += 1
        with self.connection.cursor(name=f"trails_chunks_{PgSession._cursor_number}") as cursor:
            cursor.itersize = chunk_rows
            cursor.execute(sql)  # no arguments: psycopg2 leaves '%' alone
            while True:
                rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    return
                names = [column.name for column in cursor.description]
                yield {name: list(values) for name, values in zip(names, zip(*rows))}

    def stream(self, sql, args=(), types=()):
        """As :meth:`Session.stream`; a thread fetches the next row while the caller works on
        this one (psycopg2 waits for the server without the GIL), so PostgreSQL builds a
        chunk while Python decodes the one before. The connection is the thread's until the
        generator ends or is closed."""
        import psycopg2.extras

        PgSession._cursor_number += 1
        name = f"trails_stream_{PgSession._cursor_number}"
        ready: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def fetch():
            try:
                with self.connection.cursor(name=name, cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                    cursor.itersize = 1
                    cursor.execute(to_pyformat(sql), {f"p{i}": arg for i, arg in enumerate(args, 1)})
                    for row in cursor:
                        if not _put(ready, (row, None), stop):
                            return
            except BaseException as error:  # handed to the caller
                _put(ready, (None, error), stop)
                return
            _put(ready, (None, None), stop)

        fetcher = threading.Thread(target=fetch, name=name, daemon=True)
        fetcher.start()
        try:
            while True:
                row, error = ready.get()
                if error is not None:
                    raise error
                if row is None:
                    return
                yield row
        finally:
            stop.set()
            fetcher.join()

    @contextlib.contextmanager
    def atomic(self):
        with self.connection:
            yield
