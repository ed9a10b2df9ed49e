"""Read ARM-Net style ``.libsvm`` files: ``label fid:1 fid:1 ...`` (one id per field)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_libsvm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` int64 (n,) and ``ids`` int64 (n, fields); raises ValueError on ragged rows."""
    labels, ids = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            labels.append(int(float(parts[0])))
            row = [int(item.split(":", 1)[0]) for item in parts[1:]]
            if ids and len(row) != len(ids[0]):
                raise ValueError(f"{path}:{number}: {len(row)} ids, expected {len(ids[0])}")
            ids.append(row)
    return np.array(labels, dtype=np.int64), np.array(ids, dtype=np.int64)
