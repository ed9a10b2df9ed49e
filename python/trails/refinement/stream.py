"""A train split that training may use while it is still being read (a streaming start).

The refinement service reads the train split in a background thread into a
:class:`GrowingSplit` and starts successive halving as soon as the first chunk is in: each
training epoch draws its permutation over the rows read *when the epoch starts*
(:meth:`GrowingSplit.visible`, a view, no copy), so the first epochs of the first candidates
see a prefix of the split and every later epoch sees all of it. Everything that plans (the
cosine horizon, iterations per epoch of the finishing phase) uses ``len()``, the rows counted
before the read (the whole split's).

The same two methods exist on :class:`~trails.refinement.data.SplitTensors` (``visible()`` and
``complete()`` return the split itself), so training code takes either.

Example::

    split = GrowingSplit(capacity=1000, n_fields=4, device="cpu")
    split.append(first_chunk)          # the reader thread
    view = split.visible()             # training: the rows read so far
    split.finish()                     # the reader: no more rows
    whole = split.complete()           # SplitTensors of every row
"""

from __future__ import annotations

import threading

import torch

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import Cancelled


class GrowingSplit:
    """Rows appended by one reader thread, read by the training thread.

    Args:
        capacity: rows counted before the read; ``len()`` until the read ends. The split
            holds no more (a reader with more rows fails with TrailsError: read the count and
            the rows in one REPEATABLE READ transaction).
        n_fields: fields per row.
        device: where the rows are kept (each chunk is copied in as it arrives).
    """

    def __init__(self, capacity: int, n_fields: int, device="cpu"):
        self.capacity = int(capacity)
        self.n_fields = int(n_fields)
        self._device = torch.device(device)
        self._ids = self._values = self._labels = None  # allocated with the first chunk's label dtype
        self._rows = 0
        self._done = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()

    # -- the reader's side

    def append(self, chunk: SplitTensors) -> None:
        """Copy ``chunk``'s rows in after those already there."""
        if self._ids is None:
            shape = (self.capacity, self.n_fields)
            self._ids = torch.empty(shape, dtype=torch.int64, device=self._device)
            self._values = torch.empty(shape, dtype=torch.float32, device=self._device)
            self._labels = torch.empty(self.capacity, dtype=chunk.labels.dtype, device=self._device)
        start, end = self._rows, self._rows + len(chunk)
        if end > self.capacity:
            raise TrailsError(f"the split grew while it was read: more than the {self.capacity} rows counted",
                              hint="read the count and the rows in one REPEATABLE READ transaction")
        self._ids[start:end] = chunk.ids.to(self._device)
        self._values[start:end] = chunk.values.to(self._device)
        self._labels[start:end] = chunk.labels.to(self._device)
        with self._changed:
            self._rows = end
            self._changed.notify_all()

    def finish(self) -> None:
        """The read ended: every row is in."""
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        """The read failed: ``visible``/``complete`` raise ``error`` from now on."""
        with self._changed:
            self._error, self._done = error, True
            self._changed.notify_all()

    # -- the training side

    @property
    def rows_read(self) -> int:
        return self._rows

    @property
    def done(self) -> bool:
        return self._done

    @property
    def still_reading(self) -> bool:
        """True until the read ends: training speeds measured meanwhile may be slowed by the
        reader (the finishing phase re-times)."""
        return not self._done

    @property
    def device(self) -> torch.device:
        return self._device

    def __len__(self) -> int:
        return self._rows if self._done and self._error is None else self.capacity

    def to(self, device) -> "GrowingSplit":
        """``self``: the rows are kept on the device they are read to."""
        if torch.device(device) != self._device:
            raise TrailsError(f"a split read to {self._device} cannot be moved to {device} while it is read")
        return self

    def visible(self, min_rows: int = 1) -> SplitTensors:
        """The rows read so far (a view), once at least ``min_rows`` are in or the read ended.

        Raises:
            the reader's error, when the read failed; TrailsError when it ended with no row.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._done or self._rows >= min_rows)
            if self._error is not None:
                raise self._error
            rows = self._rows
        if rows == 0:
            raise TrailsError("the train split holds no rows", hint="check the dataset's train table")
        return SplitTensors(self._ids[:rows], self._values[:rows], self._labels[:rows])

    def complete(self, timeout: float | None = None) -> SplitTensors:
        """Every row, once the read ended (waits; TrailsError after ``timeout`` seconds)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._done, timeout):
                raise TrailsError(f"the train split was still being read after {timeout} s")
        return self.visible()

    def __repr__(self) -> str:
        return f"GrowingSplit({self._rows}/{self.capacity} rows{', done' if self._done else ''})"


class ReadStopped(Exception):
    """Raised inside a reader's ``on_chunk`` once :meth:`Reader.stop` was called."""


class Reader:
    """A background thread filling a :class:`GrowingSplit`.

    Args:
        split: what the rows go into.
        read: ``read(on_chunk)`` reads every row, calling ``on_chunk(chunk, rows_so_far)``
            after each chunk (e.g. :func:`~trails.refinement.data.load_split` with that
            callback), and releases what it opened (its connection) before returning or raising.
        on_done: called with the complete :class:`SplitTensors` once every row is in.
        on_chunk: also called after each chunk (progress, a cancel check that raises).
    """

    def __init__(self, split: GrowingSplit, read, on_done=None, on_chunk=None, name: str = "trails-train-reader"):
        self.split = split
        self._read, self._on_done, self._on_chunk = read, on_done, on_chunk
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Reader":
        self.thread.start()
        return self

    def _append(self, chunk: SplitTensors, rows_so_far: int) -> None:
        if self._stop.is_set():
            raise ReadStopped("the job no longer needs the rest of the split")
        self.split.append(chunk)
        if self._on_chunk is not None:
            self._on_chunk(chunk, rows_so_far)

    def _run(self) -> None:
        try:
            self._read(self._append)
        except BaseException as error:  # handed to the training side, which raises it
            self.split.fail(error)
            return
        self.split.finish()
        if self._on_done is not None:
            try:
                self._on_done(self.split.complete())
            except Exception as error:  # e.g. an empty split: the training side raises it too
                self.split.fail(error)

    def wait_for_rows(self, min_rows: int, should_stop=None, poll_s: float = 0.05) -> None:
        """Wait until ``min_rows`` rows are in or the read ended; ``should_stop()`` (checked every
        ``poll_s``) returning true stops the read and raises Cancelled."""
        while not self.split.done and self.split.rows_read < min_rows:
            if should_stop is not None and should_stop():
                self.stop()
                raise Cancelled("cancelled while waiting for the first rows")
            self.thread.join(poll_s)
        self.split.visible(min_rows)  # raises the reader's error, if any

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading at the next chunk and wait for the thread (and its connection) to end."""
        self._stop.set()
        self.thread.join(timeout)
