"""A candidate that starts from a stored model's weights instead of fresh ones (a warm start).

``model_selection(..., warm_start => true)`` on a table that grew resumes the deployed model's
candidate (:mod:`trails.selection.warm`): its family builds a trainable of the stored model
(:meth:`~trails.families.base.ModelFamily.resume_trial`) on the layout of the table now, whose
ids the stored model's layout reaches through :attr:`StoredStart.id_map` (value ids kept,
missing and unknown ids moved: :mod:`trails.data.layout_extend`). The trainable then races
like any other candidate; what it trains is counted from 0.

A :class:`StoredStart` travels to the refinement service in the job's JSON (:meth:`to_json`)
and to Ray workers pickled.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from trails.data.layout_extend import IdMap
from trails.families.base import Candidate, parse_candidate


@dataclass(frozen=True)
class StoredStart:
    """Where one candidate starts.

    Attributes:
        candidate: the stored model's candidate.
        weights: the stored model's bytes (``trails.models.weights``: its family's ``to_bytes``).
        id_map: the stored model's layout ids → this run's layout ids.
        model_id: the stored model's id (for NOTICEs and ``trails.runs.warm_start``).
    """

    candidate: Candidate
    weights: bytes = field(repr=False)
    id_map: IdMap
    model_id: int

    def to_json(self) -> dict:
        """The JSON object :meth:`from_json` reads (the weights base64-encoded)."""
        return {"candidate": self.candidate.text, "weights": base64.b64encode(self.weights).decode("ascii"),
                "id_map": self.id_map.to_json(), "model_id": self.model_id}

    @classmethod
    def from_json(cls, data: dict) -> "StoredStart":
        """The start :meth:`to_json` wrote.

        Raises:
            TrailsError: for a candidate no family reads; KeyError, ValueError: for a malformed object.
        """
        return cls(parse_candidate(data["candidate"]), base64.b64decode(data["weights"], validate=True),
                   IdMap.from_json(data["id_map"]), int(data["model_id"]))


def starts_by_candidate(starts) -> dict:
    """``{candidate: start}`` of a sequence of :class:`StoredStart` (a later one of the same
    candidate wins)."""
    return {start.candidate: start for start in starts}
