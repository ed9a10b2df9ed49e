"""What successive halving returns and reports: :class:`RungResult` (one evaluation),
:class:`HalvingResult` (the run) and :class:`Progress` (a progress event)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from typing import Any

from trails.families import Candidate, get_family
from trails.families.mlp_config import trained_settings
from trails.refinement.trainer import TrainingSettings
from trails.task import BINARY_01, Task

__all__ = ["HalvingResult", "Progress", "RungResult", "finite_or_none"]


@dataclass
class RungResult:
    """One candidate evaluated at the end of its share of one rung.

    Attributes:
        candidate: the candidate (:class:`~trails.families.base.Candidate`: its family and
            configuration; an MLP's configuration is its hidden widths).
        rung: rung number, 0 first.
        total_epochs: complete units of its family's resource (epochs; for trees, units of
            ``settings.rounds_per_unit`` boosting rounds) the model had trained when evaluated (the rung's
            ``total_epochs`` unless ``interrupted``).
        valid_score: the task's metric on the decision sample of the valid split (the whole split when it
            holds at most ``decision_valid_rows`` rows).
        seconds: wall time of this rung's training and evaluation of this candidate.
        train_losses: mean training loss of each epoch trained in this rung.
        interrupted: the deadline stopped its training before the rung's epochs were done.
        final: the finishing phase's evaluation (the winner trained on to the deadline).
    """

    candidate: Candidate
    rung: int
    total_epochs: int
    valid_score: float
    seconds: float
    train_losses: list = field(default_factory=list)
    interrupted: bool = False
    final: bool = False

    def to_json(self) -> dict:
        """JSON-ready: the candidate as ``arch`` (its text) and ``family``."""
        data = {key: value for key, value in asdict(self).items() if key != "candidate"}
        data.update(arch=self.candidate.text, family=self.candidate.family,
                    valid_score=finite_or_none(self.valid_score))
        return data


@dataclass
class HalvingResult:
    """What :func:`successive_halving` returns.

    Attributes:
        rungs: every evaluation, in the order they happened.
        schedule: the planned rungs (:func:`~trails.refinement.schedule.halving_rungs`).
        winner: the candidate with the best valid score; ``winner_epochs`` the units it had trained then.
        valid_score: its valid score on ``valid_rows`` rows: the whole valid split, or the decision
            sample when the deadline was hit before the winner could be re-evaluated.
        decision_score: its valid score on the decision sample (what chose it; = ``valid_score`` when
            the sample is the whole split); ``decision_rows``: the sample's rows.
        state_dict: its model as it was when evaluated (its trainable's snapshot: an MLP's
            weights as CPU tensors); rebuild the model with :meth:`model`, store it as
            :meth:`weights`.
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
        failures: candidates whose training raised, with the reason (they lost):
            ``{arch, family, rung, error}`` each.
    """

    rungs: list
    schedule: list
    winner: Candidate
    winner_epochs: int
    valid_score: float
    state_dict: Any
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
    failures: list = field(default_factory=list)

    def model(self, device="cpu"):
        """The winner's model, ready to predict (an MLP: a :class:`~trails.model.TabularMLP` in
        eval mode)."""
        return get_family(self.winner.family).from_snapshot(self.winner.config, self.state_dict, self.n_ids,
                                                            self.n_fields, self.settings, self.task, device)

    def weights(self) -> bytes:
        """The winner's model as ``trails.models.weights`` stores it."""
        return get_family(self.winner.family).snapshot_bytes(self.state_dict)

    def best_by_family(self) -> dict:
        """Each family's best decision score over every evaluation: ``{family: score}``."""
        best: dict = {}
        for result in self.rungs:
            family = result.candidate.family
            if result.valid_score == result.valid_score and (
                    family not in best or self.task.better(result.valid_score, best[family])):
                best[family] = result.valid_score
        return best

    def to_json(self) -> dict:
        """Everything but the weights, JSON-ready (candidates as text: ``"8-16-32"``,
        ``"gbdt:leaves=31,…"``)."""
        return {
            "winner": self.winner.text, "family": self.winner.family, "winner_epochs": self.winner_epochs,
            "best_by_family": self.best_by_family(),
            "valid_score": finite_or_none(self.valid_score), "metric": self.task.metric,
            "deadline_hit": self.deadline_hit,
            "planned_epochs": self.planned_epochs, "trained_epochs": self.trained_epochs,
            "finish_epochs": self.finish_epochs, "valid_rows": self.valid_rows,
            "decision_score": finite_or_none(self.decision_score), "decision_rows": self.decision_rows,
            "training_dtype": self.training_dtype,
            "seconds": self.seconds, "n_ids": self.n_ids, "n_fields": self.n_fields,
            "embedding_dim": trained_settings(self.winner, self.settings).embedding_dim,  # the winner's
            "batch_norm": self.settings.batch_norm,
            "settings": self.settings.to_json(), "seed": self.seed, "device": self.device,
            "schedule": [rung._asdict() for rung in self.schedule],
            "rungs": [rung.to_json() for rung in self.rungs], "failures": list(self.failures),
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
