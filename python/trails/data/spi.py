"""In-database batch reading: rows arrive through PL/Python's SPI cursor (``plpy.cursor``).

Usage inside a PL/Python function::

    rows = read_batch_spi(plpy, "frappe", n=32)        # EncodedRows, layout from trails.layouts
"""

from __future__ import annotations

from trails.data.batches import EncodedRows, read_dataset_rows
from trails.data.session import SpiSession


def read_batch_spi(plpy, dataset: str, n: int | None, split: str = "train",
                   label: str = "label") -> EncodedRows:
    """The first ``n`` rows (all when ``None``) of ``dataset``'s ``split``, encoded."""
    return read_dataset_rows(SpiSession(plpy), dataset, n, split, label)
