"""In-database batch reading: rows arrive through PL/Python's SPI cursor (``plpy.cursor``).

Usage inside a PL/Python function::

    rows = read_batch_spi(plpy, "frappe", n=32)        # EncodedRows, layout from trails.layouts
"""

from __future__ import annotations

from trails.data.batches import EncodedRows, read_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.session import SpiSession


def read_batch_spi(plpy, dataset: str, n: int | None, split: str = "train",
                   label: str = "label") -> EncodedRows:
    """The first ``n`` rows (all when ``None``) of ``dataset``'s ``split``, encoded."""
    session = SpiSession(plpy)
    resolved = resolve_dataset(session, dataset)
    layout = get_or_create_layout(session, resolved, label)
    return read_encoded(session, resolved, layout, split, limit=n)
