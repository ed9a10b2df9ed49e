"""Reading a job's train and valid splits from PostgreSQL onto the device (or the cache).

What the job may read, and reading it as its caller, is :mod:`.access`; this module counts the
rows (refusing splits larger than ``[service] max_table_mb``), reads them chunk by chunk through
a server-side cursor, encoded with the job's layout, and keeps them in the
:class:`~.cache.TensorCache`. With ``[service] stream_train`` the valid split is read first,
then the train split in a background :class:`~trails.refinement.stream.Reader` into a
:class:`~trails.refinement.stream.GrowingSplit`, returned as soon as its first chunk is in
(training starts on it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trails.data.layout import Layout
from trails.refinement.data import SplitTensors, iter_split_chunks, load_split, require_fits
from trails.refinement.jobs import JobSpec
from trails.refinement.service.access import CallerView, close, connect, open_as_caller, read_as
from trails.refinement.service.cache import TensorCache
from trails.refinement.service.settings import ServiceSettings
from trails.refinement.stream import GrowingSplit, Reader

__all__ = ["Loaded", "SplitLoader"]

log = logging.getLogger("trails.refinement.service")

# on_chunk(chunk, rows so far) for one split (progress and cancel while reading)
ChunkHook = Callable[[SplitTensors, int], None]


@dataclass(frozen=True)
class Loaded:
    """A job's splits: ``train`` (a :class:`GrowingSplit` while ``reader`` still reads it),
    ``valid``, the ``layout`` they are encoded with, the ``reader`` (None when the train split
    is complete: read, or from the cache) and the train rows in when they were handed over
    (``train_rows_at_start``)."""

    train: SplitTensors | GrowingSplit
    valid: SplitTensors
    layout: Layout
    reader: Reader | None = None
    train_rows_at_start: int = 0

    @classmethod
    def complete(cls, train: SplitTensors, valid: SplitTensors, layout: Layout) -> "Loaded":
        """Both splits read in full."""
        return cls(train, valid, layout, None, len(train))


class SplitLoader:
    """Loads jobs' splits for one service (its DSN, device, cache and limits)."""

    def __init__(self, settings: ServiceSettings, device: torch.device, cache: TensorCache):
        self.settings = settings
        self.device = device
        self.cache = cache

    def load(self, job_id: str, spec: JobSpec, on_chunk_for: Callable[[str], ChunkHook],
             should_stop: Callable[[], bool]) -> Loaded:
        """``spec``'s splits, from the cache or from PostgreSQL (one REPEATABLE READ transaction:
        the rows counted are the rows read). The connection is closed here, or by the reader
        when it ends. ``on_chunk_for(split)`` reports the reading of ``split`` (and may raise
        Cancelled); ``should_stop`` cancels the wait for a streamed split's first rows."""
        connection = connect(self.settings.dsn, spec.database)
        handed_over = False
        try:
            view = open_as_caller(connection, spec, self.device)
            cached = self.cache.get(view.cache_key)
            if cached is not None:
                log.info("job %s: %s splits from the cache", job_id, spec.dataset)
                return Loaded.complete(*cached, view.layout)
            if read_as(connection, spec.role):
                log.info("job %s: reading as role %s", job_id, spec.role)
            rows = self._count_rows(view)
            valid = self._read(view, "valid", on_chunk_for("valid"))
            if not self.settings.stream_train:
                train = self._read(view, "train", on_chunk_for("train"))
                self.cache.put(view.cache_key, (train, valid))
                log.info("job %s: read %d train and %d valid rows of %s", job_id, len(train), len(valid),
                         spec.dataset)
                return Loaded.complete(train, valid, view.layout)
            reader = self._stream_train(job_id, connection, view, valid, rows["train"], on_chunk_for("train"))
            handed_over = True
            reader.start()
            reader.wait_for_rows(1, should_stop)
            log.info("job %s: training starts on %d of %d train rows (the rest is read meanwhile)", job_id,
                     reader.split.rows_read, rows["train"])
            return Loaded(reader.split, valid, view.layout, reader, reader.split.rows_read)
        finally:
            if not handed_over:
                close(connection)

    def _read(self, view: CallerView, split: str, on_chunk: ChunkHook) -> SplitTensors:
        return load_split(view.session, view.dataset, view.layout, split, self.device, ordered=False,
                          on_chunk=on_chunk)

    def _stream_train(self, job_id: str, connection, view: CallerView, valid: SplitTensors, rows: int,
                      on_chunk: ChunkHook) -> Reader:
        """A reader (not started) of the train split into a :class:`GrowingSplit` of ``rows``
        rows; it closes ``connection`` when it ends and caches the splits once complete."""

        def read_train(on_chunk: ChunkHook) -> None:
            try:
                for _ in iter_split_chunks(view.session, view.dataset, view.layout, "train", self.device,
                                           on_chunk, ordered=False):
                    pass  # each chunk is copied into the GrowingSplit by on_chunk
            finally:
                close(connection)

        def done(train: SplitTensors) -> None:
            self.cache.put(view.cache_key, (train, valid))
            log.info("job %s: read %d train rows of %s while training", job_id, len(train), view.dataset.name)

        return Reader(GrowingSplit(rows, view.layout.n_fields, self.device), read_train, done, on_chunk)

    def _count_rows(self, view: CallerView) -> dict:
        """Rows of the train and valid splits (``{split: rows}``); raises TrailsError when their
        decoded tensors would exceed ``max_table_mb`` (counted first: the machine is not taken
        down by a table larger than memory)."""
        rows = {split: view.session.query(f"SELECT count(*) AS n {view.dataset.source(split)}")[0]["n"]
                for split in ("train", "valid")}
        require_fits(view.dataset.name, sum(rows.values()), view.layout.n_fields, self.settings.max_table_mb,
                     "[service] max_table_mb")
        return rows
