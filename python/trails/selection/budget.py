"""The call's clock and what its time budget allows.

A :class:`Budget` starts when the SQL function was called (imports count against it), records
the seconds of every phase (``trails.runs.phases``), and, once the refiner's reading costs are
known, fixes the reserve kept for after the refinement (reading the test split, evaluating and
storing) and from it the refinement's hard deadline. A budget in trials (``budget_s`` None) has
no deadline: every time question answers None.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from dataclasses import dataclass, field

# seconds kept back, beyond the measured test-split cost, for storing the run and model
STORE_RESERVE_S = 0.5
# train+valid rows per second the service is assumed to read and decode (psycopg2 path)
SERVICE_READ_ROWS_PER_S = 150_000


@dataclass
class Clock:
    """Seconds since the call started, and a named record of each phase."""

    started: float = field(default_factory=time.monotonic)
    started_at: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    phases: dict = field(default_factory=dict)

    @classmethod
    def since(cls, started: float | None) -> "Clock":
        """A clock started at ``started`` (a ``time.monotonic()`` value; now when None)."""
        if started is None:
            return cls()
        now = datetime.datetime.now(datetime.timezone.utc)
        return cls(started=started, started_at=now - datetime.timedelta(seconds=time.monotonic() - started))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def record(self, name: str, since: float) -> float:
        """Add the seconds since ``since`` to phase ``name`` (rounded to 0.1 ms); returns them."""
        seconds = time.monotonic() - since
        self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 4)
        return seconds

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time the ``with`` block as phase ``name`` (added to what it already holds)."""
        since = time.monotonic()
        try:
            yield
        finally:
            self.record(name, since)


@dataclass
class Budget:
    """The time budget of one call (or none: a budget in trials).

    Attributes:
        budget_s: seconds for the whole call, None for a budget in trials.
        clock: the call's :class:`Clock`.
        reserve_s: seconds kept for after the refinement (set by :meth:`settle`).
        pending_load_s: seconds of reading still to come before training can start (the
            service reads train + valid itself; 0 when the backend has read them).
        spent_at_settle_s: :attr:`spent_s` when :meth:`settle` was called.
        available_s: what the plan may spend, fixed at :meth:`settle`: the budget less what
            was spent, the reading to come and the reserve (None in trials).
    """

    budget_s: float | None
    clock: Clock
    reserve_s: float = 0.0
    pending_load_s: float = 0.0
    spent_at_settle_s: float = 0.0
    available_s: float | None = None

    @classmethod
    def start(cls, budget_s: float | None, started: float | None = None) -> "Budget":
        """The budget of a call that started at ``started`` (``time.monotonic()``; now when
        None); with ``started``, the seconds until now are recorded as ``import_s``."""
        budget = cls(budget_s, Clock.since(started))
        if started is not None:
            budget.clock.record("import_s", started)
        return budget

    @property
    def in_trials(self) -> bool:
        return self.budget_s is None

    def phase(self, name: str):
        """Context manager timing phase ``name`` (see :meth:`Clock.phase`)."""
        return self.clock.phase(name)

    def settle(self, test_read_s: float, pending_load_s: float, comparisons: int = 0) -> None:
        """Fix the reserve (storing, plus reading and evaluating the test split: twice
        ``test_read_s``, and once more for each of ``comparisons`` models scored on it — the
        deployed model :mod:`~trails.selection.deployment` compares with) and what the plan
        may spend from now."""
        self.reserve_s = STORE_RESERVE_S + (2 + comparisons) * test_read_s
        self.pending_load_s = pending_load_s
        self.spent_at_settle_s = self.spent_s
        if self.budget_s is not None:
            self.available_s = self.budget_s - self.spent_at_settle_s - self.reserve_s

    @property
    def spent_s(self) -> float:
        """Seconds spent so far, plus the reading still to come."""
        return self.clock.elapsed() + self.pending_load_s

    @property
    def deadline(self) -> float | None:
        """The refinement's hard deadline (``time.monotonic()``): the budget's end less the
        reserve; None in trials."""
        return None if self.budget_s is None else self.clock.started + self.budget_s - self.reserve_s

    def seconds_left(self) -> float | None:
        """Seconds from now to the deadline, less the reading to come; None in trials."""
        return None if self.budget_s is None else self.deadline - time.monotonic() - self.pending_load_s

    def seconds_from_now(self, seconds: float | None) -> float | None:
        """A ``time.monotonic()`` deadline ``seconds`` from now (None for None)."""
        return None if seconds is None else time.monotonic() + seconds
