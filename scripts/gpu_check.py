"""The GPU path, run for real: ``model_selection('frappe', 60)`` through a refinement service on
CUDA, beside the same call through a service on this machine's CPUs, and the 512x4 MLP's epoch.

Run by ``scripts/gpu_check.sh`` (which installs what is missing and starts nothing itself);
written for a lent GPU machine where PostgreSQL is not installed and PL/Python cannot embed the
machine's Python (its torch is built for another Python than Debian's PostgreSQL links), so:

1. a private cluster is made with the PostgreSQL binaries given (``--pg-root``: a tree holding
   ``usr/lib/postgresql/15`` and ``usr/share/postgresql/15``) and started on 127.0.0.1;
2. the trails extension is created in it with a **stand-in** ``plpython3u`` language (no
   handler that runs Python: the SQL functions exist, none is called) — the tables, types and
   plpgsql functions are the extension's own;
3. frappe is loaded from ``--data-dir`` (``trails.data.loaders``);
4. for each device of ``--devices``: a refinement service is started on that device
   (``python -m trails.refinement.service --device D``) and, for each run of :data:`RUNS` on it,
   the **backend's half of model_selection** (``trails.selection.select``: prepare, measure, filter, plan, store) runs in
   this process through psycopg2 (``PgSession``: the same code SPI runs through), with
   ``refinement => 'service'``; the service reads the tables as the caller and trains on D;
5. one epoch of the 512-512-512-512 MLP is timed on each device in fp32 and bf16
   (``scripts/bench_training_precision.py``, frappe-shaped synthetic rows).

Everything is written under ``--out``: ``gpu_check.txt`` (the summary, epochs included),
``gpu_selection_<device>_<families>.txt`` (each call's NOTICEs and row), ``gpu_service_<device>.log``,
``gpu_postgres.log``.

Usage: python scripts/gpu_check.py --pg-root DIR [--pg-libs DIR] [--data-dir DIR] [--out DIR]
       [--devices cuda,cpu] [--budget 60] [--port 5499] [--service-port 8093]
Exit status: 0 when every step ran (whatever the scores), 1 when one failed (said in the summary).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import platform
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_VERSION = "15"
STAND_IN_LANGUAGE = """\
-- a stand-in for PL/Python on a machine without it: functions in plpython3u can be created
-- (no validator), and calling one fails (the plpgsql handler cannot parse Python)
CREATE FUNCTION plpython3u_stand_in() RETURNS language_handler AS '$libdir/plpgsql', 'plpgsql_call_handler'
LANGUAGE C;
CREATE LANGUAGE plpython3u HANDLER plpython3u_stand_in;
"""


class Summary:
    """Lines printed as they come and written to ``out/gpu_check.txt``."""

    def __init__(self, out: Path):
        self.path, self.failed = out / "gpu_check.txt", False
        self.path.write_text("")

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        with self.path.open("a") as handle:
            handle.write(line + "\n")


def run_as_postgres(command: list[str], env: dict | None = None) -> str:
    """``command`` as the ``postgres`` user when root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        command = (["runuser", "-u", "postgres", "--", *command] if shutil.which("runuser")
                   else ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)])
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_cluster(pg_root: Path, pg_libs: Path | None, root: Path, port: int) -> dict:
    """initdb + pg_ctl start of a private cluster on 127.0.0.1:``port``; returns the libpq params."""
    binaries = pg_root / f"usr/lib/postgresql/{PG_VERSION}/bin"
    env = dict(os.environ, LD_LIBRARY_PATH=str(pg_libs)) if pg_libs else dict(os.environ)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    run_as_postgres([str(binaries / "initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
                     "--no-sync", "-E", "UTF8", "--no-locale"], env)
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c jit=off"
               " -c shared_buffers=1GB -c synchronous_commit=off")
    run_as_postgres([str(binaries / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"),
                     "-o", options, "-w", "start"], env)
    return {"host": "127.0.0.1", "port": str(port), "user": "postgres", "dbname": "postgres"}


def create_extension(pg_root: Path, params: dict) -> None:
    """The trails extension (``extension/trails--<version>.sql``, built by make) with the
    stand-in language, in a new database ``trails``."""
    import psycopg2

    extensions = pg_root / f"usr/share/postgresql/{PG_VERSION}/extension"
    (extensions / "plpython3u.control").write_text(
        "comment = 'stand-in for PL/Python (gpu_check)'\ndefault_version = '1.0'\nsuperuser = true\n")
    (extensions / "plpython3u--1.0.sql").write_text(STAND_IN_LANGUAGE)
    shutil.copy(REPO / "extension/trails.control", extensions / "trails.control")
    for script in sorted((REPO / "extension").glob("trails--*.sql")):
        text = script.read_text()
        start, end = text.find("\n-- sql/00_check_python.sql"), text.find("\n-- sql/01_schema.sql")
        if start >= 0 and end > start:  # the check that PL/Python imports trails: nothing to import here
            text = text[:start] + text[end:]
        (extensions / script.name).write_text(text)
    connection = psycopg2.connect(**params)
    connection.autocommit = True
    connection.cursor().execute("CREATE DATABASE trails")
    connection.close()
    connection = psycopg2.connect(**dict(params, dbname="trails"))
    connection.autocommit = True
    connection.cursor().execute("CREATE EXTENSION trails CASCADE")
    connection.close()


def write_config(path: Path, data_dir: Path, service_port: int, dsn: str) -> Path:
    """A user config: frappe's folder, the service's port and the DSN it reads through."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict({"data": {"data_dir": str(data_dir)},
                      "service": {"port": str(service_port), "host": "127.0.0.1", "url": "", "dsn": dsn}})
    with path.open("w") as handle:
        parser.write(handle)
    return path


def start_service(device: str, port: int, log: Path) -> subprocess.Popen:
    """The refinement service on ``device``; returns once ``/healthz`` answers (or raises)."""
    process = subprocess.Popen([sys.executable, "-m", "trails.refinement.service", "--device", device,
                                "--port", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the service on {device} exited: see {log.name}")
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the service on {device} did not answer in 120 s")


def health(port: int) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())


def run_selection(params: dict, budget_s: float, families: str, log: Path) -> tuple[dict, float]:
    """``model_selection('frappe', budget_s, refinement => 'service', families => families)``
    through psycopg2;
    (the row, wall seconds). NOTICEs and the row go to ``log``."""
    import psycopg2

    from trails.data.session import PgSession
    from trails.selection import Hooks, SelectionRequest, select

    connection = psycopg2.connect(**dict(params, dbname="trails"))
    lines: list[str] = []
    started = time.monotonic()
    try:
        row = select(PgSession(connection), SelectionRequest("frappe", budget_s, refinement="service", families=families,
                                                             warm_start=False),
                     Hooks(notice=lines.append), started=started)
        connection.commit()
    finally:
        log.write_text("\n".join(lines) + "\n")
        connection.close()
    seconds = time.monotonic() - started
    with log.open("a") as handle:
        handle.write(json.dumps(row, default=str, indent=1) + "\n")
    return row, seconds


def time_epochs(device: str) -> str:
    """``bench_training_precision.py`` on ``device`` (all CPUs' threads); its output."""
    threads = str(os.cpu_count() or 1)
    done = subprocess.run([sys.executable, str(REPO / "scripts/bench_training_precision.py"), "--device", device,
                           "--threads", threads, "--repeats", "5", "--epochs", "2"],
                          capture_output=True, text=True, timeout=300)
    text = done.stdout + (f"\n(exit {done.returncode})\n{done.stderr[-3000:]}" if done.returncode else "")
    return text


def environment() -> list[str]:
    import torch

    lines = [f"python {platform.python_version()}, torch {torch.__version__}, "
             f"CUDA available: {torch.cuda.is_available()}, CPUs: {os.cpu_count()}"]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    with open("/proc/cpuinfo") as handle:
        model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "?")
    lines.append(f"CPU: {model}")
    return lines


RUNS = (("cuda", "auto"), ("cuda", "mlp"), ("cpu", "auto"))
"""(service device, families) of each model_selection call, in order: both families on the GPU,
the MLPs alone on it (so that an MLP wins and trains on to the deadline there), and the CPUs'."""


def check(summary: Summary, args, root: Path) -> None:
    for line in environment():
        summary.say(line)
    params = start_cluster(args.pg_root, args.pg_libs, root, args.port)
    create_extension(args.pg_root, params)
    dsn = " ".join(f"{key}={value}" for key, value in dict(params, dbname="trails").items())
    os.environ["TRAILS_CONFIG"] = str(write_config(root / "config.ini", args.data_dir, args.service_port, dsn))
    from trails.data.loaders import load_dataset
    import psycopg2

    connection = psycopg2.connect(dsn)
    counts = load_dataset(connection, "frappe", str(args.data_dir))
    connection.close()
    summary.say(f"loaded frappe: {counts}")
    devices = args.devices.split(",")
    for device in devices:
        service = start_service(device, args.service_port, args.out / f"gpu_service_{device}.log")
        try:
            summary.say(f"\nservice healthz: {json.dumps(health(args.service_port))}")
            for families in [families for run_device, families in RUNS if run_device == device]:
                selection(summary, params, args, device, families)
        finally:
            service.terminate()
            service.wait(timeout=30)
    for device in devices:
        summary.say(f"\n## one epoch of 512-512-512-512 on {device}")
        summary.say(time_epochs(device))


def selection(summary: Summary, params: dict, args, device: str, families: str) -> None:
    """One model_selection call through the service on ``device``, its outcome summarised."""
    summary.say(f"\n## model_selection('frappe', {args.budget:g}, refinement => 'service', "
                f"families => '{families}'), service on {device}")
    try:
        row, seconds = run_selection(params, args.budget, families,
                                     args.out / f"gpu_selection_{device}_{families}.txt")
        summary.say(f"wall {seconds:.1f} s; winner {row['best_arch']} ({row['family']}); valid "
                    f"{row['valid_score']:.4f}, test {row['test_score']:.4f} {row['metric']}; "
                    f"{row['k_refined']} candidates, U = {row['u']}")
        summary.say("phases (s): " + json.dumps(run_phases(params, row["run_id"])))
    except Exception:  # noqa: BLE001 — a check reports every failure and goes on
        summary.failed = True
        summary.say("FAILED:\n" + traceback.format_exc())


def run_phases(params: dict, run_id: int) -> dict:
    """The seconds of each phase that ``trails.runs`` recorded for ``run_id``."""
    import psycopg2

    connection = psycopg2.connect(**dict(params, dbname="trails"))
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT phases FROM trails.runs WHERE run_id = %s", (run_id,))
        phases = cursor.fetchone()[0]
    finally:
        connection.close()
    return {key: round(value, 2) for key, value in phases.items()
            if key.endswith("_s") and isinstance(value, (int, float))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-root", type=Path, required=True)
    parser.add_argument("--pg-libs", type=Path, default=None, help="LD_LIBRARY_PATH for the PostgreSQL binaries")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--out", type=Path, default=REPO / "exps/results")
    parser.add_argument("--devices", default="cuda,cpu")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=5499)
    parser.add_argument("--service-port", type=int, default=8093)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = Summary(args.out)
    root = Path(tempfile.mkdtemp(prefix="trails-gpu-"))
    try:
        check(summary, args, root)
    except Exception:  # noqa: BLE001
        summary.failed = True
        summary.say("FAILED:\n" + traceback.format_exc())
    finally:
        if (root / "server.log").exists():
            shutil.copy(root / "server.log", args.out / "gpu_postgres.log")
        if (root / "data").exists():
            with contextlib.suppress(RuntimeError):
                run_as_postgres([str(args.pg_root / f"usr/lib/postgresql/{PG_VERSION}/bin/pg_ctl"), "-D",
                                 str(root / "data"), "-m", "immediate", "stop"],
                                dict(os.environ, LD_LIBRARY_PATH=str(args.pg_libs or "")))
    summary.say("\nresult: " + ("a step FAILED (above)" if summary.failed else "every step ran"))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
