"""An MLP candidate's training recipe: how it trains, on top of the run's
:class:`~trails.refinement.settings.TrainingSettings`.

A :class:`Recipe` overrides some of the settings' recipe knobs (:data:`RECIPE_KEYS`: dropout
after each hidden ReLU, AdamW weight decay on the Linear weights, L2 on a batch's embeddings,
piecewise-linear bins of numeric fields, batch size, embedding width, the finishing phase's
plateau schedule); a knob it leaves as None is the settings'. The empty recipe is the run's own
(``[refinement]``: TRAILS' by default, with the schedule chosen by the task). Its text lists the
knobs it sets, ``drop=0.3,wd=0.1,eml2=0.001``, in :data:`RECIPE_KEYS` order; the empty recipe's
text is empty.

**The portfolio** (:data:`PORTFOLIO`) is small and measured, not searched: the run's recipe,
wider embeddings (:data:`WIDE`, ``emb=16``), a regularised one (:data:`REGULARISED`: dropout
0.3, weight decay 0.1, embedding L2 0.001) and piecewise-linear bins (:data:`PIECEWISE`,
``ple=16``, only on a table with a numeric field: :meth:`Recipe.applies`). Each was measured one
recipe at a time on one arch, 30 s, best valid score (``exps/recipe.py --part recipes``,
``exps/README.md`` "The MLP's recipe" and "The recipe space"):

* the regularised recipe lifts the tables an MLP overfits from its first epoch (uci_diabetes
  0.658 → 0.668, movielens 0.7761 → 0.7770), not frappe;
* bins lift movielens (0.7752 → 0.7807) and uci_diabetes (0.6579 → 0.6668), not diamonds;
* 16 numbers per id instead of 10 lift frappe (0.9787 → 0.9799–0.9802) and uci_diabetes
  (0.6579 → 0.6698), diamonds and movielens a little, and cost fertility 0.0005; 6 lower frappe
  by 0.003. It is a recipe, not the run's width, because TFMEMs score and ``max_params`` bounds
  the archs at the run's width (a run bounded by ``max_params`` races no wider recipe:
  :func:`trails.selection.entrants.race_recipes`);
* a batch of 128 (rate ÷ 2) or 2048 (rate × 2), an epoch holding the same rows, moved no table
  by more than 0.005 and 2048 lost on four of five: on two CPU cores a large batch buys no
  progress per second, so batch size is a knob (``bs=N``) but not in the portfolio.

No recipe wins everywhere, so the race decides: successive halving trains (arch, recipe) pairs
(:func:`trails.selection.entrants.mlp_configs`) and keeps what the valid rows prefer.

**The schedule** is not raced: the rungs train every candidate at a constant rate, so they
cannot tell schedules apart. The finishing phase's is chosen by the task (:func:`task_schedule`,
``[refinement] plateau = auto``): step down on a plateau for a classification — it lifted every
classification table (frappe 0.9789 → 0.9796, uci_diabetes 0.6579 → 0.6639, movielens 0.7759 →
0.7770, fertility 0.6200 → 0.6207) — and the cosine for a regression, where diamonds' R² fell
0.9814 → 0.9743 with steps (it improves slowly and noisily for 100 epochs, and each step
lowers the rate for good). One regression table is thin evidence; the knob (``plateau=N``, or
``[refinement] plateau = 0 | N``) lets a user decide.

:func:`numeric_settings` applies ``model_selection``'s ``numeric_encoding``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from trails.errors import TrailsError

RECIPE_KEYS = {"dropout": "drop", "weight_decay": "wd", "embedding_l2": "eml2", "numeric_bins": "ple",
               "batch_size": "bs", "embedding_dim": "emb", "plateau": "plateau"}
"""Field of :class:`Recipe` (a :class:`~trails.refinement.settings.TrainingSettings` field) →
its key in the text form."""

INTEGER_KNOBS = ("numeric_bins", "batch_size", "embedding_dim", "plateau")
"""Knobs whose value is a whole number."""

PAIR_SEPARATOR = ","
KEY_VALUE_SEPARATOR = "="


@dataclass(frozen=True)
class Recipe:
    """Overrides of the run's recipe settings (None: the settings' value).

    Attributes:
        dropout: dropout probability after each hidden ReLU, in [0, 1).
        weight_decay: AdamW decay of the Linear weights, ≥ 0.
        embedding_l2: L2 penalty on a batch's embeddings, ≥ 0.
        numeric_bins: numeric fields embedded piecewise-linearly over at most this many bins
            (:mod:`trails.piecewise`); 0: linearly.
        batch_size: rows per iteration; the learning rate scales with the square root of its
            ratio to the run's batch, and an epoch's iterations inversely, so an epoch still
            holds the run's rows (:meth:`apply`).
        embedding_dim: numbers per embedded id (the MLP's input is fields × this wide).
        plateau: the finishing phase's schedule (``TrainingSettings.plateau``): N ≥ 1 steps the
            rate down after N epochs without a better valid score; 0: cosine.
    """

    dropout: float | None = None
    weight_decay: float | None = None
    embedding_l2: float | None = None
    numeric_bins: int | None = None
    batch_size: int | None = None
    embedding_dim: int | None = None
    plateau: int | None = None

    def applies(self, settings) -> bool:
        """Whether it changes training on a run of ``settings``: not when it only sets the batch
        size or width the run already has; a recipe with ``numeric_bins`` needs a numeric field
        with quantiles (``settings.numeric_edges``) and bins the run does not already use."""
        knobs = {item.name: getattr(self, item.name) for item in fields(self) if getattr(self, item.name) is not None}
        if knobs and all(name in ("batch_size", "embedding_dim") and value == getattr(settings, name)
                         for name, value in knobs.items()):
            return False
        return not self.numeric_bins or (bool(settings.numeric_edges) and self.numeric_bins != settings.numeric_bins)

    @property
    def is_default(self) -> bool:
        """Whether it overrides nothing (the run's own recipe)."""
        return all(getattr(self, item.name) is None for item in fields(self))

    def apply(self, settings):
        """``settings`` with this recipe's knobs (validated). A ``batch_size`` ``b`` on a run of
        batch ``b0`` also sets the learning rate to ``lr0 · √(b / b0)`` (Adam's square-root
        scaling) and ``iter_per_epoch`` to ``round(i0 · b0 / b)`` (at least 1), so an epoch still
        holds about the run's rows and a rung costs about the same. Applying it again to its own
        result changes nothing (the ratio is then 1): refit applies a stored model's recipe to
        the settings it recorded.

        Raises:
            TrailsError: for a knob out of its range.
        """
        overrides = {item.name: getattr(self, item.name) for item in fields(self) if getattr(self, item.name) is not None}
        if not overrides:
            return settings
        if self.batch_size is not None and int(self.batch_size) >= 1:
            ratio = int(self.batch_size) / int(settings.batch_size)
            overrides["learning_rate"] = settings.learning_rate * math.sqrt(ratio)
            overrides["iter_per_epoch"] = max(1, round(settings.iter_per_epoch / ratio))
        applied = dataclasses.replace(settings, **overrides)
        applied.validate()
        return applied

    @property
    def text(self) -> str:
        """``drop=0.3,wd=0.1,eml2=0.001`` (the knobs it sets, in :data:`RECIPE_KEYS` order; empty
        for the default)."""
        return PAIR_SEPARATOR.join(
            f"{key}{KEY_VALUE_SEPARATOR}{int(getattr(self, name)) if name in INTEGER_KNOBS else format(getattr(self, name), 'g')}"
            for name, key in RECIPE_KEYS.items() if getattr(self, name) is not None)

    @classmethod
    def parse(cls, text: str) -> "Recipe":
        """The recipe ``text`` names (inverse of :attr:`text`; keys in any order, each once).

        Raises:
            TrailsError: for an unknown or repeated key, or a value that is not a number.
        """
        names = {key: name for name, key in RECIPE_KEYS.items()}
        values: dict[str, float] = {}
        for pair in filter(None, (part.strip() for part in str(text).split(PAIR_SEPARATOR))):
            key, separator, value = pair.partition(KEY_VALUE_SEPARATOR)
            key = key.strip()
            if not separator or key not in names or names[key] in values:
                raise TrailsError(f"the recipe {text!r} has a bad part {pair!r}",
                                  hint="key=value pairs of " + ", ".join(RECIPE_KEYS.values())
                                       + ", each once, e.g. " + REGULARISED.text)
            try:
                values[names[key]] = int(value) if names[key] in INTEGER_KNOBS else float(value)
            except ValueError:
                raise TrailsError(f"the recipe {text!r} gives {key} the value {value!r}, not a number",
                                  hint="e.g. " + REGULARISED.text) from None
        return cls(**values)


REGULARISED = Recipe(dropout=0.3, weight_decay=0.1, embedding_l2=1e-3)
"""The portfolio's regularised recipe (see the module docstring)."""

PIECEWISE = Recipe(numeric_bins=16)
"""The portfolio's recipe that embeds numeric fields piecewise-linearly (:mod:`trails.piecewise`)."""

WIDE = Recipe(embedding_dim=16)
"""The portfolio's recipe with wider embeddings (16 numbers per id instead of the run's 10)."""

PORTFOLIO = (Recipe(), WIDE, REGULARISED, PIECEWISE)
"""The recipes an MLP arch may race with, the run's own first (``[coordinator] mlp_recipes`` of
those that apply: :func:`trails.selection.entrants.race_recipes`)."""

PLATEAU_PATIENCE = 1
"""The plateau schedule's patience (evaluated epochs) where the task chooses it."""


def task_schedule(settings, task):
    """``settings`` with the finishing phase's schedule resolved for ``task`` (a
    :class:`~trails.task.Task`) where the configuration leaves it to the task (``plateau =
    auto``, None): step down on a plateau (:data:`PLATEAU_PATIENCE`) for a classification, the
    cosine for a regression (see the module docstring for the measurement behind the rule)."""
    if settings.plateau is not None:
        return settings
    return dataclasses.replace(settings, plateau=0 if task.kind == "regression" else PLATEAU_PATIENCE)


def numeric_settings(settings, numeric_edges: tuple, numeric: str = "auto"):
    """A run's ``settings`` for ``model_selection``'s ``numeric_encoding`` argument (``numeric``), with the layout's
    ``numeric_edges`` (:meth:`trails.data.layout.Layout.numeric_edges`): ``auto`` keeps the
    configuration's ``numeric_bins`` for the run's recipe and lets :data:`PIECEWISE` race;
    ``linear`` bins nothing (no edges: no binned recipe applies); ``piecewise`` bins every MLP
    (the configuration's bins, or :data:`PIECEWISE`'s when it has none).

    Raises:
        TrailsError: for an unknown ``numeric``.
    """
    if numeric == "linear":
        return dataclasses.replace(settings, numeric_edges=(), numeric_bins=0)
    if numeric not in ("auto", "piecewise"):
        raise TrailsError(f"unknown numeric encoding {numeric!r}", hint="valid: auto, linear, piecewise")
    bins = settings.numeric_bins or (PIECEWISE.numeric_bins if numeric == "piecewise" else 0)
    return dataclasses.replace(settings, numeric_edges=tuple(numeric_edges), numeric_bins=bins)
