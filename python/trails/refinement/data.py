"""A dataset split as tensors on the training device.

Training draws every batch by indexing these tensors with a shuffled permutation, so the data
is moved to the device once (GPU when there is one) and no Python data loader runs per batch.

Rows arrive chunk by chunk from :func:`trails.data.batches.iter_encoded`, through either
session (SPI in the backend, psycopg2 in the refinement service). Each chunk is put on the
device as it arrives and handed to an optional ``on_chunk`` callback, so the first rows are
usable (for progress, a profile of one epoch, or an early cancel: the callback may raise)
before the whole table is read; the split is returned once every chunk is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from trails.data.batches import EncodedRows, iter_encoded
from trails.data.dataset import Dataset
from trails.data.layout import Layout
from trails.data.session import Session
from trails.errors import TrailsError


def split_bytes(rows: int, n_fields: int) -> int:
    """Bytes of a split of ``rows`` rows as :class:`SplitTensors`: int64 ids and float32 values
    per field, one int64 label."""
    return int(rows) * (int(n_fields) * (8 + 4) + 8)


def require_fits(name: str, rows: int, n_fields: int, limit_mb: int, setting: str) -> None:
    """Raise TrailsError when ``rows`` rows of ``n_fields`` fields (train + valid) need more
    than ``limit_mb`` MiB of tensors; ``setting`` names the limit (e.g. ``[service]
    max_table_mb``). Checked before reading, so a table larger than memory is refused
    instead of taking the machine down."""
    needed = split_bytes(rows, n_fields)
    if needed > int(limit_mb) * 2**20:
        raise TrailsError(f"{name} is too large to train on here: its train and valid splits ({rows:,} rows × "
                          f"{n_fields} fields) need {needed / 2**20:,.0f} MiB of tensors, more than "
                          f"{setting} = {limit_mb}",
                          hint=f"raise {setting} on a machine with the memory, or select from a sample of the table")


@dataclass
class SplitTensors:
    """One split's rows on one device.

    Attributes:
        ids: int64 ``(N, F)`` feature ids.
        values: float32 ``(N, F)`` feature values.
        labels: ``(N,)`` int64 class indices, or float32 standardised targets (regression).
    """

    ids: torch.Tensor
    values: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.labels.device

    @property
    def nbytes(self) -> int:
        """Bytes the three tensors hold."""
        return sum(t.element_size() * t.nelement() for t in (self.ids, self.values, self.labels))

    @property
    def still_reading(self) -> bool:
        """False: every row is there (a :class:`~trails.refinement.stream.GrowingSplit` is
        true while its reader runs; a training speed measured then may be slowed by it)."""
        return False

    def visible(self, min_rows: int = 1) -> "SplitTensors":
        """``self``: every row is there (a :class:`~trails.refinement.stream.GrowingSplit`
        returns the rows read so far)."""
        return self

    def complete(self, timeout: float | None = None) -> "SplitTensors":
        """``self`` (a :class:`~trails.refinement.stream.GrowingSplit` waits for the end of its read)."""
        return self

    def to(self, device) -> "SplitTensors":
        """The same rows on ``device`` (``self`` when already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        return SplitTensors(self.ids.to(device), self.values.to(device), self.labels.to(device))

    def stratified_sample(self, max_rows: int, seed: int = 0) -> "SplitTensors":
        """At most ``max_rows`` rows drawn without replacement, each class keeping its share
        (rounded; every label present keeps at least one row, the largest label gives back
        what rounding added), in their original order;
        ``self`` when the split holds no more than ``max_rows`` rows. The same ``seed`` draws
        the same rows. Successive halving decides its rungs on such a sample of the valid split,
        so that a large table does not make every evaluation expensive.

        Raises:
            ValueError: for ``max_rows`` < 1.
        """
        if int(max_rows) < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if len(self) <= max_rows:
            return self
        labels = self.labels.cpu()
        generator = torch.Generator().manual_seed(int(seed))
        if labels.is_floating_point():  # a regression target: a plain random sample
            index = torch.sort(torch.randperm(len(self), generator=generator)[:int(max_rows)]).values
            index = index.to(self.device)
            return SplitTensors(self.ids[index], self.values[index], self.labels[index])
        strata = [torch.nonzero(labels == label).flatten() for label in torch.unique(labels)]
        takes = [max(1, round(int(max_rows) * len(rows) / len(self))) for rows in strata]
        largest = max(range(len(strata)), key=lambda i: takes[i])
        takes[largest] -= max(0, sum(takes) - int(max_rows))  # rounding up may overshoot
        chosen = [rows[torch.randperm(len(rows), generator=generator)[:take]]
                  for rows, take in zip(strata, takes)]
        index = torch.sort(torch.cat(chosen)).values.to(self.device)
        return SplitTensors(self.ids[index], self.values[index], self.labels[index])

    @classmethod
    def from_arrays(cls, ids, values, labels, device="cpu") -> "SplitTensors":
        """From numpy arrays (or anything ``torch.as_tensor`` takes): ids int64 ``(N, F)``,
        values float32 ``(N, F)``, labels ``(N,)`` (float labels stay float32, others int64).

        Raises:
            ValueError: when the shapes disagree.
        """
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.int64)
        values = torch.as_tensor(np.asarray(values), dtype=torch.float32)
        labels = np.asarray(labels)
        labels = torch.as_tensor(labels, dtype=torch.float32 if labels.dtype.kind == "f" else torch.int64)
        if ids.dim() != 2 or ids.shape != values.shape or labels.shape != (ids.shape[0],):
            raise ValueError(f"ids and values must be (N, F) and labels (N,), got {tuple(ids.shape)}, "
                             f"{tuple(values.shape)} and {tuple(labels.shape)}")
        return cls(ids.to(device), values.to(device), labels.to(device))

    @classmethod
    def from_encoded(cls, rows: EncodedRows, device="cpu") -> "SplitTensors":
        """From one :class:`~trails.data.batches.EncodedRows` chunk."""
        return cls.from_arrays(rows.ids, rows.values, rows.labels, device)

    @classmethod
    def concatenate(cls, parts: list, n_fields: int, device="cpu") -> "SplitTensors":
        """Rows of ``parts`` (on ``device``) one after the other; an empty split for no parts."""
        if not parts:
            return cls(torch.empty((0, n_fields), dtype=torch.int64, device=device),
                       torch.empty((0, n_fields), dtype=torch.float32, device=device),
                       torch.empty(0, dtype=torch.int64, device=device))
        if len(parts) == 1:
            return parts[0]
        return cls(torch.cat([p.ids for p in parts]), torch.cat([p.values for p in parts]),
                   torch.cat([p.labels for p in parts]))


def load_split(session: Session, dataset: Dataset, layout: Layout, split: str, device="cpu",
               on_chunk: Callable[[SplitTensors, int], None] | None = None,
               limit: int | None = None, chunk_rows: int | None = None,
               ordered: bool = True, reader: str | None = None) -> SplitTensors:
    """Read ``split`` of ``dataset`` encoded with ``layout`` into tensors on ``device``.

    Args:
        session: :class:`~trails.data.session.SpiSession` (in the backend) or
            :class:`~trails.data.session.PgSession` (psycopg2, server-side cursor).
        dataset, layout: from ``resolve_dataset`` and ``load_layout`` / ``get_or_create_layout``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        device: where the tensors go (``"cuda"`` or ``"cpu"``).
        on_chunk: called as ``on_chunk(chunk, rows_so_far)`` after each chunk is on the device,
            before the next one is read; ``chunk`` is a :class:`SplitTensors` usable at once.
            An exception it raises (e.g. a cancel) stops the read and propagates.
        limit: read only the first ``limit`` rows.
        chunk_rows: rows per cursor round trip (``[data] chunk_rows``).
        ordered: read in physical order (``ORDER BY ctid``) so that a seed reproduces a run.
        reader: ``columns`` or ``rows`` (``[data] reader``; see
            :func:`~trails.data.batches.iter_encoded`).

    Returns:
        :class:`SplitTensors` with the rows in read order (label NULLs dropped, as
        :meth:`~trails.data.layout.Layout.select_sql` does).

    Raises:
        TrailsError: for an unknown split.
    """
    parts = list(iter_split_chunks(session, dataset, layout, split, device, on_chunk, limit=limit,
                                   chunk_rows=chunk_rows, ordered=ordered, reader=reader))
    return SplitTensors.concatenate(parts, layout.n_fields, device)


def iter_split_chunks(session: Session, dataset: Dataset, layout: Layout, split: str, device="cpu",
                      on_chunk: Callable[[SplitTensors, int], None] | None = None, **options):
    """The chunks of :func:`load_split` one by one (nothing kept here: a streaming reader
    copies each where it belongs); ``on_chunk`` and ``options`` (``limit``, ``chunk_rows``,
    ``ordered``, ``reader``) as there."""
    rows_so_far = 0
    for rows in iter_encoded(session, dataset, layout, split, **options):
        chunk = SplitTensors.from_encoded(rows, device)
        rows_so_far += len(chunk)
        if on_chunk is not None:
            on_chunk(chunk, rows_so_far)
        yield chunk
