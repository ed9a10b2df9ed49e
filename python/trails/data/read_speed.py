"""How fast a session turns a dataset's train and valid splits into tensors (``scripts/bench_read.py``).

The same function runs in a backend (SPI, from a PL/Python function) and in a Python process
(psycopg2, as the refinement service reads), so both paths are timed on the same code.
"""

from __future__ import annotations

import time

from trails.data.session import Session

SPLITS = ("train", "valid")


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM) in MiB; None where /proc has no status."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def read_splits(session: Session, dataset: str, label: str, reader: str) -> dict:
    """Read the train and valid splits of ``dataset`` into tensors with ``reader``
    (``columns`` or ``rows``). Resolving the dataset, its layout and importing torch happen
    before the clock starts. Returns ``{"rows", "read_s", "peak_rss_mib"}`` (the peak after the
    read, the tensors still held)."""
    from trails.data.dataset import resolve_dataset
    from trails.data.layout_store import get_or_create_layout
    from trails.refinement.data import load_split

    resolved = resolve_dataset(session, dataset)
    layout = get_or_create_layout(session, resolved, label)
    started = time.perf_counter()
    splits = [load_split(session, resolved, layout, split, ordered=False, reader=reader) for split in SPLITS]
    seconds = time.perf_counter() - started
    return {"rows": sum(len(s) for s in splits), "read_s": seconds, "peak_rss_mib": peak_rss_mib()}
