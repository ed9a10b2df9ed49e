"""What the user asked ``model_selection`` for, checked before any work is done.

:class:`SelectionRequest` holds the SQL function's arguments; :meth:`SelectionRequest.validate`
raises a :class:`~trails.errors.TrailsError` for any invalid one, without importing torch (a
fresh backend spends seconds on that), so a mistyped argument is refused at once.
:class:`Hooks` are what the caller lends the call: a cancel check, an interruptible wait and a
NOTICE sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from trails.errors import TrailsError, is_positive_number, require_seed, sql_text
from trails.task import check_metric_argument, check_task_argument
from trails.tfmem import metric_names

REFINEMENT_MODES = ("auto", "service", "backend")

FAMILY_CHOICES = {"auto": ("mlp", "gbdt"), "mlp": ("mlp",), "gbdt": ("gbdt",)}
"""``model_selection``'s ``families`` argument → the model families that enter the race:
``auto`` all of them, ``mlp`` TRAILS' MLPs only (the paper's behaviour), ``gbdt`` trees only."""


NUMERIC_CHOICES = {"auto": "the binned recipe races beside the others, the valid rows decide",
                   "linear": "the standardised value times one vector, as TRAILS",
                   "piecewise": "every MLP embeds numeric fields piecewise-linearly over train quantiles"}
"""``model_selection``'s ``numeric_encoding`` argument → how an MLP embeds numeric fields
(:mod:`trails.piecewise`, :func:`trails.refinement.recipe.numeric_settings`)."""


DEPLOY_CHOICES = {"if_better": "when it beats the deployed model on the current test rows, or none is deployed",
                  "always": "whatever the deployed model scores", "never": "store it only"}
"""``model_selection``'s ``deploy`` argument → what it means (:mod:`trails.selection.deployment`)."""


def _no_op() -> None:
    return None


def _short_sleep() -> None:
    time.sleep(0.2)


def _discard(message: str) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """What the caller lends a call.

    Attributes:
        interrupt: raises when the user cancelled (in the backend: an SPI call).
        sleep: a short, interruptible wait (the service's job is polled between two).
        notice: sends one progress line to the user (``plpy.notice`` in the backend).
    """

    interrupt: Callable[[], None] = _no_op
    sleep: Callable[[], None] = _short_sleep
    notice: Callable[[str], None] = _discard


@dataclass(frozen=True)
class SelectionRequest:
    """The arguments of one ``model_selection`` call.

    Attributes:
        dataset: a table name, or the stem of ``<name>_train/_valid/_test``.
        budget_s: seconds for the whole call, or None for a budget in trials (``max_trials``).
        label, tfmem, refinement, seed, task, metric: as the SQL function documents them.
        max_params: the largest MLP (parameters) filtering may keep, or None.
        max_trials: the most candidates refined, or None; without ``budget_s`` exactly that many.
        families: which model families race (:data:`FAMILY_CHOICES`).
        deploy: whether the new model becomes the dataset's deployed one (:data:`DEPLOY_CHOICES`).
        warm_start: continue from the dataset's previous model where it can (:mod:`trails.selection.warm`).
        numeric_encoding: how an MLP embeds numeric fields (:data:`NUMERIC_CHOICES`).
    """

    dataset: str
    budget_s: float | None
    label: str = "label"
    tfmem: str = "express_flow"
    refinement: str = "auto"
    seed: int = 0
    task: str = "auto"
    metric: str | None = None
    max_params: int | None = None
    max_trials: int | None = None
    families: str = "auto"
    deploy: str = "if_better"
    warm_start: bool = True
    numeric_encoding: str = "auto"

    @property
    def family_names(self) -> tuple[str, ...]:
        """The families in the race (:data:`FAMILY_CHOICES` of ``families``)."""
        return FAMILY_CHOICES[self.families]

    @property
    def in_trials(self) -> bool:
        """Budgeted in trials (no deadline): ``max_trials`` candidates to the full epochs."""
        return self.budget_s is None

    def validate(self) -> None:
        """Raise :class:`TrailsError` for any invalid argument. ``budget_s`` may be NULL when
        ``max_trials`` is given (a budget in trials). Imports no torch."""
        if self.budget_s is None and self.max_trials is None:
            raise TrailsError("budget_s and max_trials are both NULL: nothing bounds the selection",
                              hint="give a time budget, e.g. model_selection('frappe', 60), or a number of "
                                   "candidates to refine, e.g. max_trials => 9")
        if self.budget_s is not None and not is_positive_number(self.budget_s):
            raise TrailsError(f"budget_s must be a positive, finite number of seconds, got {sql_text(self.budget_s)}",
                              hint="e.g. model_selection('frappe', 60)")
        for name, value in (("max_params", self.max_params), ("max_trials", self.max_trials)):
            if value is not None and value < 1:
                raise TrailsError(f"{name} must be a positive integer or NULL, got {sql_text(value)}",
                                  hint="e.g. max_params => 20000, max_trials => 9")
        check_task_argument(self.task)
        check_metric_argument(self.metric, self.task)
        if self.tfmem not in metric_names():
            raise TrailsError(f"unknown TFMEM {sql_text(self.tfmem)}", hint="valid: " + ", ".join(metric_names()))
        if self.refinement not in REFINEMENT_MODES:
            raise TrailsError(f"unknown refinement mode {sql_text(self.refinement)}",
                              hint="valid: auto (the service when it answers, else in the backend), "
                                   "service, backend")
        if self.families not in FAMILY_CHOICES:
            raise TrailsError(f"unknown model families {sql_text(self.families)}",
                              hint="valid: auto (MLPs and gradient-boosted trees in one race), mlp (MLPs only, "
                                   "as TRAILS), gbdt (gradient-boosted trees only)")
        if self.deploy not in DEPLOY_CHOICES:
            raise TrailsError(f"unknown deploy choice {sql_text(self.deploy)}",
                              hint="valid: " + "; ".join(f"{name} ({meaning})" for name, meaning in DEPLOY_CHOICES.items()))
        if not self.label:
            raise TrailsError("label must name a column", hint="e.g. label => 'label'")
        if self.warm_start is None:
            raise TrailsError("warm_start must not be NULL",
                              hint="true: continue from the dataset's previous model where it can; false: start cold")
        if self.numeric_encoding not in NUMERIC_CHOICES:
            raise TrailsError(f"unknown numeric encoding {sql_text(self.numeric_encoding)}",
                              hint="valid: " + "; ".join(f"{name} ({meaning})" for name, meaning in NUMERIC_CHOICES.items()))
        require_seed(self.seed)

