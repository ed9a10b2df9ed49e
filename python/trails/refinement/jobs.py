"""The refinement job contract, shared by the client (the database backend) and the service.

:class:`JobSpec` is what ``POST /v1/jobs`` carries: the caller's data (database, role, tables
and their OIDs, split bounds, layout), what successive halving runs (candidates, U, η, R, the
deadline, the seed, the metric, the finishing phase) and **every** training setting the trained
model depends on (:class:`~trails.refinement.settings.TrainingSettings`: embedding width, batch
norm, precision, batch size, learning rate, decision sample, ...). The service trains with
exactly these settings or refuses the job; it never substitutes its own, so the weights it
returns load into the model the caller rebuilds with the same settings.

The service's HTTP schema (:class:`trails.refinement.service.JobRequest`) is checked against
this class field by field (tests/test_service.py). Standard library only: the client runs
inside PostgreSQL backends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from trails.errors import TrailsError
from trails.refinement.settings import TrainingSettings

__all__ = ["FINISHED", "STATUSES", "JobOutcome", "JobSpec"]

# Every status a job goes through, in order; a job in FINISHED changes no more.
STATUSES = ("queued", "loading", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """One refinement job (the body of ``POST /v1/jobs``).

    Attributes:
        dataset: the dataset name as ``model_selection`` takes it.
        label: the label column.
        layout_id: a row of ``trails.layouts`` for this dataset and label.
        database, role: the caller's database (read there) and role (only tables it may SELECT
            are read; ``trails.jobs()`` shows it its own jobs); None: the DSN's.
        tables, oids: split → schema-qualified table and its OID, as the caller's session
            resolved them (both or neither; None: ``dataset`` resolved by name).
        split_bounds: split → hash-split percent bounds (one table split 70/20/10), or None.
        layout: the layout row's JSON, sent by a caller whose transaction created the row and
            has not committed it yet; None: read ``layout_id`` from the store.
        candidates: the K candidates as text (an MLP arch ``"8-16-32"``, another family's
            ``"gbdt:leaves=31,…"``: :attr:`~trails.families.base.Candidate.text`), best first.
        u, eta, max_epochs: successive halving's r (U), η and R.
        deadline_s: seconds from the submission (queueing and reading rows spend them too), or
            None.
        seed: run seed.
        metric: the metric the rungs decide with (None: the layout's task's default).
        finish: train the winner on until the deadline (needs ``deadline_s``).
        settings: every training setting (:class:`TrainingSettings`).
        reserves: candidates as text trained from scratch when a finished winner leaves time
            (:attr:`trails.refinement.halving.HalvingConfig.reserves`), in this order.
        starts: candidates that start from stored weights (a warm start), as
            :meth:`StoredStart.to_json <trails.families.stored_start.StoredStart.to_json>` objects.
    """

    dataset: str
    layout_id: int
    candidates: tuple[str, ...]
    u: int
    settings: TrainingSettings
    label: str = "label"
    database: str | None = None
    role: str | None = None
    tables: dict[str, str] | None = None
    oids: dict[str, int] | None = None
    split_bounds: dict[str, list[int]] | None = None
    layout: dict | None = None
    eta: int = 3
    max_epochs: int = 27
    deadline_s: float | None = None
    seed: int = 0
    metric: str | None = None
    finish: bool = False
    reserves: tuple[str, ...] = ()
    starts: tuple[dict, ...] = ()

    @classmethod
    def field_names(cls) -> set[str]:
        """The names of the contract's fields (what the service's schema must have)."""
        return {item.name for item in fields(cls)}

    def to_json(self) -> dict:
        """The JSON body of ``POST /v1/jobs``."""
        data = {name: getattr(self, name) for name in sorted(self.field_names())}
        data["candidates"], data["reserves"] = list(self.candidates), list(self.reserves)
        data["starts"] = [dict(start) for start in self.starts]
        for name in ("reserves", "starts"):  # a service older than the field refuses it: leave it out when empty
            if not data[name]:
                del data[name]
        data["settings"] = self.settings.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict | str) -> "JobSpec":
        """The spec :meth:`to_json` wrote (a dict, or its JSON text).

        Raises:
            TrailsError: for an unknown field, a missing required one, or bad settings.
        """
        data = json.loads(data) if isinstance(data, str) else dict(data)
        unknown = sorted(set(data) - cls.field_names())
        if unknown:
            raise TrailsError(f"a refinement job has no field {', '.join(unknown)}",
                              hint="the fields are " + ", ".join(sorted(cls.field_names())))
        missing = [name for name in ("dataset", "layout_id", "candidates", "u", "settings") if data.get(name) is None]
        if missing:
            raise TrailsError(f"a refinement job needs {', '.join(missing)}")
        settings = data["settings"]
        data["settings"] = settings if isinstance(settings, TrainingSettings) else TrainingSettings.from_json(settings)
        data["candidates"], data["reserves"] = tuple(data["candidates"]), tuple(data.get("reserves") or ())
        data["starts"] = tuple(dict(start) for start in data.get("starts") or ())
        return cls(**data)


@dataclass(frozen=True)
class JobOutcome:
    """A job the service finished (:meth:`~trails.refinement.client.RefinementClient.run`).

    Attributes:
        job_id: the service's id of the job.
        winner: the selected candidate as text (``"8-16-32"``, ``"gbdt:…"``).
        valid_score: its score on the valid split (the job's metric).
        weights: its ``state_dict`` as ``torch.save`` bytes.
        summary: the job's result (:meth:`HalvingResult.to_json` and the service's additions,
            including the ``settings`` it trained with), its ``rungs`` and ``job_id``.
    """

    job_id: str
    winner: str
    valid_score: float
    weights: bytes = field(repr=False)
    summary: dict = field(default_factory=dict, repr=False)
