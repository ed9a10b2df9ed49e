"""Test harness: a real PostgreSQL 15 cluster with PL/Python, started for the session.

``trails_server`` runs ``initdb`` + ``pg_ctl`` (as the ``postgres`` user when the tests run
as root) on a free loopback port, with ``PYTHONPATH`` = the running venv's site-packages (where
``make install`` put the trails package; nothing of this checkout), the way ``make install``
configures the main cluster. pytest-postgresql
then builds a template database once (extension + the three datasets, loaded by the real
loaders) and gives each test that asks for ``postgresql`` a fresh copy of it.

The extension's files must be installed (``make install``; ``make test`` does it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from pytest_postgresql import factories

REPO = Path(__file__).resolve().parents[1]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DATA_DIR = Path(os.environ.get("TRAILS_DATA_DIR") or REPO.parent / "shared" / "data")


@dataclass
class Server:
    """What pytest-postgresql's ``depends_on`` reads from a process fixture."""

    host: str
    port: int
    user: str = "postgres"
    password: str | None = None
    options: str = ""
    dbname: str = "postgres"
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None

    def dsn(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


SERVICE_PORT: int | None = None  # the refinement service's port in the tests (_test_config)


def write_config(path: Path, overrides: dict) -> Path:
    """A user config file: the repository's config.ini with ``overrides`` ({section: {key:
    value}}) on top, readable by the postgres user."""
    import configparser

    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    parser.read(REPO / "config.ini")
    if parser.has_option("data", "data_dir"):  # relative to the repository, not to ``path``
        parser.set("data", "data_dir", str((REPO / parser.get("data", "data_dir")).resolve()))
    for section, values in overrides.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, str(value))
    with open(path, "w") as handle:
        parser.write(handle)
    os.chmod(path, 0o644)
    return path


def _test_config(root: Path) -> Path:
    """The user config with the refinement service on a free port, so that a service a
    developer runs on the default port never meets the tests. Exported as TRAILS_CONFIG to the
    test cluster and to this process."""
    global SERVICE_PORT
    SERVICE_PORT = _free_port()
    path = write_config(root / "config.ini", {"service": {"port": SERVICE_PORT, "url": ""}})
    os.environ["TRAILS_CONFIG"] = str(path)
    return path


@pytest.fixture(scope="session")
def trails_server():
    """A running cluster on 127.0.0.1 whose PL/Python imports trails from the venv."""
    root = Path(tempfile.mkdtemp(prefix="trails-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"],
               TRAILS_CONFIG=str(_test_config(root)))
    _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
               " -c full_page_writes=off -c synchronous_commit=off")
    try:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                      "-o", options, "-w", "start"], env=env)
    except subprocess.CalledProcessError as error:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise RuntimeError(f"test cluster did not start: {error.stderr}\n{log}") from error
    server = Server("127.0.0.1", port)
    # a restart of this cluster (fast: every connection is terminated), for the faults suite
    server.restart = lambda: _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                           "-o", options, "-m", "fast", "-w", "restart"], env=env)
    yield server
    _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    shutil.rmtree(root, ignore_errors=True)


def load_template(host, port, user, dbname, password=None, **_):
    """Template database: the extension and the three datasets, loaded by the real loaders."""
    from trails.data.loaders import load_dataset

    connection = psycopg2.connect(host=host, port=port, user=user, dbname=dbname)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION trails CASCADE")
        for name in ("frappe", "uci_diabetes", "criteo"):
            load_dataset(connection, name, DATA_DIR)
    finally:
        connection.close()


postgresql_noproc = factories.postgresql_noproc(depends_on="trails_server", dbname="trails_tmpl",
                                                load=[load_template])
postgresql = factories.postgresql("postgresql_noproc")


@pytest.fixture
def pg_dsn(postgresql) -> str:
    """libpq DSN of this test's fresh database (for psycopg2 and subprocesses)."""
    info = postgresql.info
    return f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"


@pytest.fixture
def pg2(pg_dsn):
    """A psycopg2 connection to this test's database (the out-of-DB path)."""
    connection = psycopg2.connect(pg_dsn)
    yield connection
    connection.close()


@pytest.fixture
def sql(postgresql):
    """``sql(query, *args)`` → list of tuples, on this test's database (autocommit)."""
    postgresql.autocommit = True

    def run(query, *args):
        with postgresql.cursor() as cursor:
            cursor.execute(query, args or None)
            return cursor.fetchall() if cursor.description else []

    return run


@contextlib.contextmanager
def refinement_service_process(pg_dsn: str, config: Path | None = None):
    """The refinement service (``python -m trails.refinement.service``) as a real process on
    127.0.0.1 at the tests' service port, reading the database of ``pg_dsn``, with
    ``config`` as its TRAILS_CONFIG (the tests' own when None); yields its /healthz URL."""
    info = dict(part.split("=", 1) for part in pg_dsn.split())
    env = dict(os.environ, PGHOST=info["host"], PGPORT=info["port"], PGUSER=info["user"],
               PGDATABASE=info["dbname"])
    if config is not None:
        env["TRAILS_CONFIG"] = str(config)
    process = subprocess.Popen([sys.executable, "-m", "trails.refinement.service",
                                "--host", "127.0.0.1", "--port", str(SERVICE_PORT)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{SERVICE_PORT}/healthz"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"service exited: {process.stderr.read()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
