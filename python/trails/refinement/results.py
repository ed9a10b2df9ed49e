"""What successive halving returns and reports: :class:`RungResult` (one evaluation),
:class:`HalvingResult` (the run) and :class:`Progress` (a progress event)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from trails.model import build_model
from trails.refinement.trainer import TrainingSettings
from trails.space import arch_text
from trails.task import BINARY_01, Task

__all__ = ["HalvingResult", "Progress", "RungResult", "finite_or_none"]


@dataclass
class RungResult:
    """One candidate evaluated at the end of its share of one rung.

    Attributes:
        arch: the candidate's hidden widths.
        rung: rung number, 0 first.
        total_epochs: complete epochs the model had trained when evaluated (the rung's
            ``total_epochs`` unless ``interrupted``).
        valid_score: the task's metric on the decision sample of the valid split (the whole split when it
            holds at most ``decision_valid_rows`` rows).
        seconds: wall time of this rung's training and evaluation of this candidate.
        train_losses: mean training loss of each epoch trained in this rung.
        interrupted: the deadline stopped its training before the rung's epochs were done.
        final: the finishing phase's evaluation (the winner trained on to the deadline).
    """

    arch: tuple
    rung: int
    total_epochs: int
    valid_score: float
    seconds: float
    train_losses: list = field(default_factory=list)
    interrupted: bool = False
    final: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["arch"] = arch_text(self.arch)
        data["valid_score"] = finite_or_none(self.valid_score)
        return data


@dataclass
class HalvingResult:
    """What :func:`successive_halving` returns.

    Attributes:
        rungs: every evaluation, in the order they happened.
        schedule: the planned rungs (:func:`~trails.refinement.schedule.halving_rungs`).
        winner: the arch with the best valid score; ``winner_epochs`` the epochs it had trained then.
        valid_score: its valid score on ``valid_rows`` rows: the whole valid split, or the decision
            sample when the deadline was hit before the winner could be re-evaluated.
        decision_score: its valid score on the decision sample (what chose it; = ``valid_score`` when
            the sample is the whole split); ``decision_rows``: the sample's rows.
        state_dict: its weights (CPU tensors) as they were when evaluated; rebuild the model
            with :meth:`model`.
        planned_epochs: epochs the schedule plans; ``trained_epochs``: complete epochs trained
            (equal unless the deadline was hit).
        deadline_hit: the deadline stopped the run early.
        seconds: wall time of the whole run.
        n_ids, n_fields, settings, seed, device: what is needed to rebuild and reproduce it
            (``settings`` are the settings every candidate trained with: ``to_json`` reports them
            all, so a caller rebuilds the winner with the width and batch norm it was trained with).
        finish_epochs: epochs of the winner's finishing phase (0 without one).
        training_dtype: what training's forward pass ran in (``torch.bfloat16`` or
            ``torch.float32``; :func:`~trails.refinement.precision.resolve_precision`).
    """

    rungs: list
    schedule: list
    winner: tuple
    winner_epochs: int
    valid_score: float
    state_dict: dict
    planned_epochs: int
    trained_epochs: int
    deadline_hit: bool
    seconds: float
    n_ids: int
    n_fields: int
    settings: TrainingSettings
    seed: int
    device: str
    finish_epochs: int = 0
    valid_rows: int | None = None
    decision_score: float | None = None
    decision_rows: int | None = None
    task: Task = BINARY_01
    training_dtype: str = "torch.float32"

    def model(self, device="cpu") -> torch.nn.Module:
        """The winner as a :class:`~trails.model.TabularMLP` in eval mode."""
        return build_model(self.winner, self.n_ids, self.n_fields, self.settings.embedding_dim,
                           self.settings.batch_norm, state=self.state_dict, device=device,
                           n_outputs=self.task.n_outputs)

    def to_json(self) -> dict:
        """Everything but the weights, JSON-ready (archs as ``"8-16-32"`` text)."""
        return {
            "winner": arch_text(self.winner), "winner_epochs": self.winner_epochs,
            "valid_score": finite_or_none(self.valid_score), "metric": self.task.metric,
            "deadline_hit": self.deadline_hit,
            "planned_epochs": self.planned_epochs, "trained_epochs": self.trained_epochs,
            "finish_epochs": self.finish_epochs, "valid_rows": self.valid_rows,
            "decision_score": finite_or_none(self.decision_score), "decision_rows": self.decision_rows,
            "training_dtype": self.training_dtype,
            "seconds": self.seconds, "n_ids": self.n_ids, "n_fields": self.n_fields,
            "embedding_dim": self.settings.embedding_dim, "batch_norm": self.settings.batch_norm,
            "settings": self.settings.to_json(), "seed": self.seed, "device": self.device,
            "schedule": [rung._asdict() for rung in self.schedule],
            "rungs": [rung.to_json() for rung in self.rungs],
        }


@dataclass
class Progress:
    """A progress report: ``fraction`` of the planned epochs done (0..1), a one-line
    ``message``, the ``rung`` number, and ``result`` when a candidate was just evaluated."""

    fraction: float
    message: str
    rung: int
    result: RungResult | None = None


def finite_or_none(value):
    """A score for JSON: NaN (a diverged model's) becomes null."""
    return None if value is None or value != value else value
