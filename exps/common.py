"""What every experiment driver shares: the connection, the dataset's splits (read once per
process), result paths, CSV and PNG writers, and the budgeted in-process baselines' plumbing.

Connection: libpq's PGHOST / PGPORT / PGUSER / PGDATABASE (PGDATABASE defaults to ``trails``).
Results: ``$TRAILS_RESULTS_DIR`` when set (the tests point it at a temporary folder), else
``exps/results/``. Quick runs write ``<name>_quick.csv`` / ``.png`` so that they never
overwrite the committed full results.

Threads: every process an experiment trains in (this one, and the PostgreSQL backend it calls)
uses ``--threads`` torch intra-op threads and as many BLAS/OpenMP threads (threadpoolctl)
(default 1, ``$TRAILS_EXP_THREADS``): the 2-core
machine these results come from is shared with other work, and one thread per process keeps
the timings stable.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PGDATABASE", "trails")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see trails/__init__)

import trails  # noqa: E402,F401  (sets the OpenMP policy before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

# The label column of each dataset the experiments know; any other name needs --label. The
# experiments compare binary classifiers by ROC-AUC: every label is read as a binary task.
LABELS = {"frappe": "label", "uci_diabetes": "label", "criteo": "label"}


# --- arguments, logging ---------------------------------------------------------------------

def parser(description: str, dataset: bool = False, default_dataset: str = "frappe") -> argparse.ArgumentParser:
    """The arguments every driver takes: ``--quick``, ``--threads``, ``--seeds``; and
    ``--dataset`` / ``--label`` when ``dataset``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="CI-sized run; writes *_quick.csv/png beside the full results")
    p.add_argument("--threads", type=int, default=int(os.environ.get("TRAILS_EXP_THREADS", "1")),
                   help="torch intra-op threads in this process and in the backend (default 1)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    if dataset:
        p.add_argument("--dataset", default=default_dataset,
                       help="frappe | uci_diabetes (any dataset trails resolves, with --label)")
        p.add_argument("--label", default=None, help="label column (default: per dataset)")
    return p


def setup(args) -> None:
    """Apply ``--threads`` to this process and fill in ``args.label``."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(max(1, int(args.threads)))
    threadpool_limits(max(1, int(args.threads)))  # numpy's BLAS (and sklearn's OpenMP) too
    if hasattr(args, "dataset") and getattr(args, "label", None) is None:
        args.label = LABELS.get(args.dataset, "label")


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


# --- results --------------------------------------------------------------------------------

def results_dir() -> Path:
    path = Path(os.environ.get("TRAILS_RESULTS_DIR") or REPO / "exps" / "results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def result_path(name: str, ext: str, quick: bool, dataset: str | None = None) -> Path:
    """``<results>/<name>[_<dataset>][_quick].<ext>``."""
    stem = name + (f"_{dataset}" if dataset else "") + ("_quick" if quick else "")
    return results_dir() / f"{stem}.{ext}"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-4) else round(value, 6)
    if isinstance(value, (np.floating,)):
        return _cell(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """Write ``rows`` (dicts) with ``columns`` (default: the first row's keys) to ``path``."""
    columns = columns or (list(rows[0].keys()) if rows else [])
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in columns})
    log(f"wrote {path} ({len(rows)} rows)")
    return path


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV as dicts; numbers parsed to float where they parse."""
    def parse(value):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value

    with open(path, newline="") as handle:
        return [{key: parse(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    log(f"wrote {path}")
    return path


def machine() -> str:
    """One line: CPU model and cores, GPU or not, torch and Python versions."""
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({model}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def stamp() -> str:
    """Date, git commit (``+dirty`` when the tree has changes) and machine, for logs."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "python", "sql"],
                               capture_output=True, text=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return f"{datetime.datetime.now().isoformat(timespec='seconds')} commit {commit}; {machine()}"


# --- database -------------------------------------------------------------------------------

def connect(autocommit: bool = True):
    """A psycopg2 connection from the PG* variables."""
    import psycopg2

    connection = psycopg2.connect("")
    connection.autocommit = autocommit
    return connection


def backend_threads(connection, threads: int) -> None:
    """Give the connection's backend ``threads`` torch threads (and as many BLAS threads), and
    import trails there now
    (so a later timed call does not pay for the imports)."""
    with connection.cursor() as cursor:
        cursor.execute("DO LANGUAGE plpython3u $trails$\nimport torch\n"
                       f"torch.set_num_threads({int(threads)})\n"
                       "from threadpoolctl import threadpool_limits\n"
                       f"threadpool_limits({int(threads)})\n"
                       "import trails.selection, trails.filtering, trails.refinement.halving\n$trails$")


@dataclass
class Splits:
    """One dataset read once: the layout, train/valid/test tensors, and the seconds the
    train + valid read took (psycopg2, the refinement service's path)."""

    name: str
    label: str
    session: object
    context: object  # trails.context.DatasetContext
    train: object
    valid: object
    test: object
    load_s: float

    @property
    def dataset(self):
        return self.context.dataset

    @property
    def layout(self):
        return self.context.layout

    @property
    def space(self):
        return self.context.space

    @property
    def scoring(self):
        return self.context.scoring

    @property
    def n_ids(self) -> int:
        return self.layout.n_ids

    @property
    def n_fields(self) -> int:
        return self.layout.n_fields

    @property
    def in_features(self) -> int:
        return self.n_fields * self.settings.embedding_dim

    @property
    def settings(self):
        from trails.refinement.trainer import TrainingSettings

        return TrainingSettings.from_config()

    def sample(self, rows: int = 4096):
        """The first ``rows`` train rows (what model_selection profiles training on)."""
        from trails.refinement.data import SplitTensors

        t = self.train
        return SplitTensors(t.ids[:rows], t.values[:rows], t.labels[:rows])


@functools.lru_cache(maxsize=4)
def load_splits(name: str, label: str = "label", task: str = "binary") -> Splits:
    """``name``'s layout (for ``label`` as a ``task``) and its three splits as CPU tensors, read
    once per process."""
    from trails.context import resolve_context
    from trails.data.session import PgSession
    from trails.refinement.data import load_split

    session = PgSession(connect(autocommit=False))  # server-side cursors need a transaction
    context = resolve_context(session, name, label, task=task)
    dataset, layout = context.dataset, context.layout
    started = time.monotonic()
    train = load_split(session, dataset, layout, "train")
    valid = load_split(session, dataset, layout, "valid")
    load_s = time.monotonic() - started
    test = load_split(session, dataset, layout, "test")
    log(f"{name}: {len(train)} / {len(valid)} / {len(test)} rows, {layout.n_fields} fields, "
        f"{layout.n_ids} ids; train + valid read in {load_s:.2f} s")
    return Splits(name, label, session, context, train, valid, test, load_s)


# --- summaries ------------------------------------------------------------------------------

def median_min_max(values) -> tuple[float, float, float]:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return (float("nan"),) * 3
    return float(np.median(values)), float(values.min()), float(values.max())


def dump_json(value) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))
