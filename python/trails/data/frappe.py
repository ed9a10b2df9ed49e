"""Rebuild the frappe benchmark table from the raw usage log.

The protocol (NFM / ARM-Net, see ``shared/data/README.md``): every log row is a positive;
for each, two negatives with the same user and context and an item drawn uniformly
among the items that user never used; 96,203 x 3 = 288,609 rows, shuffled with a fixed
seed and split 202,027 / 57,722 / 28,860.

Context values keep the order in which they first appear in the log, and users and items
their numeric order: laid end to end, that reproduces ARM-Net's feature ids exactly.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost",
          "weather", "country", "city")
CONTEXT_FIELDS = FIELDS[2:]
SPLIT_SIZES = (202_027, 57_722, 28_860)
NEGATIVES_PER_POSITIVE = 2
DEFAULT_SEED = 2024


@dataclass
class FrappeLog:
    """The raw log: ``users``/``items`` int arrays (n,), ``context`` {field: str array (n,)},
    ``context_values`` {field: values in order of first appearance}."""

    users: np.ndarray
    items: np.ndarray
    context: dict[str, np.ndarray]
    context_values: dict[str, list[str]]


def read_log(path: Path) -> FrappeLog:
    """Parse ``raw_frappe.csv.gz`` (tab separated, header ``user item cnt daytime ...``)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    column = {name: index for index, name in enumerate(header)}
    missing = [name for name in FIELDS if name not in column]
    if missing:
        raise ValueError(f"{path}: columns {missing} not found in header {header}")
    users = np.array([int(row[column["user"]]) for row in lines], dtype=np.int64)
    items = np.array([int(row[column["item"]]) for row in lines], dtype=np.int64)
    context, context_values = {}, {}
    for name in CONTEXT_FIELDS:
        values = [row[column[name]] for row in lines]
        context[name] = np.array(values, dtype=object)
        context_values[name] = list(dict.fromkeys(values))
    return FrappeLog(users, items, context, context_values)


def sample_negative_items(users: np.ndarray, items: np.ndarray, seed: int) -> np.ndarray:
    """For each log row, ``NEGATIVES_PER_POSITIVE`` items its user never used.

    Returns an int64 array (n, NEGATIVES_PER_POSITIVE) of item values, drawn uniformly
    from the log's distinct items by rejection sampling with ``numpy.random.default_rng(seed)``.
    """
    item_values = np.unique(items)
    user_index = np.searchsorted(np.unique(users), users)
    item_index = np.searchsorted(item_values, items)
    used = np.zeros((user_index.max() + 1, len(item_values)), dtype=bool)
    used[user_index, item_index] = True
    rng = np.random.default_rng(seed)
    owner = np.repeat(user_index, NEGATIVES_PER_POSITIVE)
    drawn = rng.integers(0, len(item_values), size=owner.shape[0])
    clash = used[owner, drawn]
    while clash.any():
        drawn[clash] = rng.integers(0, len(item_values), size=int(clash.sum()))
        clash = used[owner, drawn]
    return item_values[drawn].reshape(-1, NEGATIVES_PER_POSITIVE)


def build_rows(log: FrappeLog, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """All 288,609 labelled rows, shuffled: {"label", "user", "item", <context>...} arrays."""
    n = len(log.users)
    negatives = sample_negative_items(log.users, log.items, seed)
    copies = 1 + NEGATIVES_PER_POSITIVE
    columns = {
        "label": np.repeat(np.array([[1] + [0] * NEGATIVES_PER_POSITIVE]), n, axis=0).ravel(),
        "user": np.repeat(log.users, copies),
        "item": np.column_stack([log.items, negatives]).ravel(),
    }
    for name in CONTEXT_FIELDS:
        columns[name] = np.repeat(log.context[name], copies)
    order = np.random.default_rng(seed + 1).permutation(n * copies)
    return {name: values[order] for name, values in columns.items()}


def split_rows(rows: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{"train", "valid", "test"} → columns, by the fixed 7:2:1 sizes."""
    total = len(rows["label"])
    if total != sum(SPLIT_SIZES):
        raise ValueError(f"expected {sum(SPLIT_SIZES)} rows, built {total}")
    bounds = np.cumsum((0,) + SPLIT_SIZES)
    return {
        split: {name: values[bounds[i]:bounds[i + 1]] for name, values in rows.items()}
        for i, split in enumerate(("train", "valid", "test"))
    }
