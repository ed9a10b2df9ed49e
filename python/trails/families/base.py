"""A model family behind one small interface, and a candidate as a (family, configuration) pair.

A *family* (the MLP today; gradient-boosted trees next) is one module implementing
:class:`ModelFamily`: how a configuration reads and prints, how its model is built, trained a
rung at a time and resumed (a *trainable*, :class:`Trainable`), evaluated, predicted with,
exported, stored as bytes and counted in parameters. Successive halving, the planner, the
registry, predict, export and refit call the interface and never ask which family they hold
(FLAML's estimators, scikit-learn's estimator contract).

A :class:`Candidate` names one family and one of its configurations. Its text form is what
NOTICEs print and ``trails.runs.best_arch`` / ``trails.models.arch`` store: the configuration's
text, prefixed by ``family:`` except for the MLP (:data:`DEFAULT_FAMILY`), whose text is the arch
exactly as before families existed (``"64-128-64"``). A text without a ``family:`` prefix reads
as an MLP arch.

The families known to this process are registered here (:func:`register_family`);
:mod:`trails.families` registers the built-in ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from trails.errors import TrailsError

DEFAULT_FAMILY = "mlp"
"""The family of a candidate text without a ``family:`` prefix, and of a stored model whose
``hyper`` names none (every model stored before families existed)."""

FAMILY_SEPARATOR = ":"
"""Between the family's name and the configuration's text in a candidate's text."""

RESUMED_MARK = "@model"
"""Ends the text of a candidate that resumes from a stored model (a warm start):
``"64-128-64@model12"`` — beside a fresh ``"64-128-64"``, another candidate."""

CANDIDATE_SEED_MASK = 0x7FFFFFFF
"""Candidate seeds are non-negative 31-bit integers (what ``torch.manual_seed`` and others take)."""


@runtime_checkable
class Trainable(Protocol):
    """One candidate being trained, resumably: its model, optimiser and generator state.

    Attributes:
        model: the family's model as it trains (what :meth:`ModelFamily.evaluate`,
            :meth:`ModelFamily.predict` and :meth:`ModelFamily.to_bytes` take).
        epochs_trained: complete units of the family's training resource trained so far
            (:attr:`ModelFamily.resource`: epochs for the MLP, boosting rounds for trees).
        seed: the seed it was created with.
    """

    candidate: "Candidate"
    model: Any
    epochs_trained: int
    seed: int

    def export_state(self) -> dict:
        """Everything needed to continue it elsewhere (:meth:`ModelFamily.trial_from_state`),
        picklable; its ``"model"`` entry is :meth:`snapshot`'s value."""
        ...

    def snapshot(self) -> Any:
        """An immutable copy of the model as it is now (what the race keeps of its best
        evaluation; :meth:`ModelFamily.from_snapshot` makes a model of it)."""
        ...


@runtime_checkable
class ModelFamily(Protocol):
    """What every model family provides (see the module docstring).

    Attributes:
        name: the family's name, as in a candidate's text and the stored ``hyper``'s ``family``.
        resource: the unit a rung trains (``"epochs"``; ``"boosting rounds"`` for trees).
        export_formats: the formats :meth:`export` writes (a subset of
            :data:`trails.export.FORMATS`).
        rescored: whether the race's winner is scored again on the whole valid split when the
            decisions saw a sample of it (an MLP evaluates fast; a large trees model predicts
            slowly, and its score on the sample stands).
    """

    name: str
    resource: str
    export_formats: tuple[str, ...]
    rescored: bool

    def parse_config(self, text: str) -> Hashable:
        """The configuration ``text`` names (without any ``family:`` prefix).

        Raises:
            TrailsError: when ``text`` is not a configuration of this family.
        """
        ...

    def config_text(self, config: Hashable) -> str:
        """The text of ``config``; :meth:`parse_config` reads it back to an equal value."""
        ...

    def build(self, config: Hashable, hyper, n_outputs: int, device="cpu") -> Any:
        """A fresh, untrained model of ``config`` for the layout and settings in ``hyper``
        (a :class:`~trails.families.hyper.ModelHyper`) with ``n_outputs`` outputs (the task's),
        initialised from the global RNG."""
        ...

    def from_bytes(self, config: Hashable, hyper, n_outputs: int, data: bytes, device="cpu") -> Any:
        """The model :meth:`to_bytes` stored as ``data``, ready to predict (inverse of
        :meth:`to_bytes` for the same ``config``, ``hyper`` and ``n_outputs``)."""
        ...

    def to_bytes(self, model: Any) -> bytes:
        """``model``'s trained state as bytes (what ``trails.models.weights`` stores)."""
        ...

    def parameter_count(self, config: Hashable, hyper, n_outputs: int) -> int:
        """The parameters ``config`` trains beyond the layout's embedding or encoding (what
        ``max_params`` bounds)."""
        ...

    def prediction_seconds(self, units: int, settings) -> float:
        """Seconds to keep before the race's deadline for predicting
        ``settings.prediction_rows`` rows, after the race, with a model trained ``units``
        units (0 when that is cheap enough for the reserve the budget already keeps)."""
        ...

    def variations(self, config: Hashable) -> list:
        """Configurations near ``config`` worth training when a finished race leaves time
        (:mod:`trails.refinement.halving`), most promising first; may be empty."""
        ...

    def max_iterations(self, units: int, n_rows: int, settings) -> int:
        """The training horizon of a trainable that may train ``units`` units of the resource
        on ``n_rows`` rows with ``settings`` (the ``max_iterations`` of :meth:`new_trial`)."""
        ...

    def new_trial(self, config: Hashable, n_ids: int, n_fields: int, max_iterations: int, settings,
                      seed: int = 0, device="cpu", task=None) -> Trainable:
        """A fresh trainable of ``config`` (its weights from ``seed`` alone; the caller's RNG is
        left as it was)."""
        ...

    def resume_trial(self, config: Hashable, weights: bytes, id_map, n_ids: int, n_fields: int,
                     max_iterations: int, settings, seed: int = 0, device="cpu", task=None) -> Trainable:
        """A trainable of ``config`` that starts as the stored model ``weights`` (:meth:`to_bytes`
        of a model of this family, trained on a layout whose ids ``id_map`` —
        :class:`~trails.data.layout_extend.IdMap` — sends into this one of ``n_ids`` ids);
        what it trains from here counts from 0 (a warm start:
        :mod:`trails.families.stored_start`).

        Raises:
            TrailsError: when ``weights`` do not fit ``config`` and the settings.
        """
        ...

    def trial_from_state(self, state: dict, n_ids: int, n_fields: int, settings, device="cpu",
                             task=None) -> Trainable:
        """The trainable whose :meth:`Trainable.export_state` was ``state``."""
        ...

    def train(self, trainable: Trainable, data, units: int, settings, deadline: float | None = None,
              should_stop: Callable[[], bool] | None = None,
              on_epoch: Callable[[Trainable, float], None] | None = None, watch=None) -> list[float]:
        """Train ``trainable`` ``units`` more units on ``data``, continuing its state; returns
        the mean training loss of each complete unit (fewer when ``deadline`` passed).
        ``watch``: valid rows (the decision sample) a family may follow while it trains to keep
        its best state (trees keep their best round and stop after a patience); a family may
        ignore it (the MLP does)."""
        ...

    def finish(self, trainable: Trainable, context, deadline: float, evaluation_s: float,
               on_epoch: Callable[[Trainable, float], None] | None = None):
        """The finishing phase of the race's winner: train on until ``deadline``
        (``time.monotonic()``), keeping time for the final evaluation (``evaluation_s``: the
        longest evaluation so far), then evaluate on ``context.decision_data``; returns an
        :class:`~trails.refinement.steps.Advance`, or None when nothing fitted."""
        ...

    def from_snapshot(self, config: Hashable, snapshot: Any, n_ids: int, n_fields: int, settings, task,
                      device="cpu") -> Any:
        """The model a trainable's :meth:`Trainable.snapshot` captured, ready to evaluate,
        predict with and store."""
        ...

    def snapshot_bytes(self, snapshot: Any) -> bytes:
        """What ``trails.models.weights`` stores for ``snapshot`` (:meth:`to_bytes` of its model)."""
        ...

    def model_parameters(self, model: Any) -> int:
        """The size of a trained ``model`` as the result row reports it (``params``): the MLP's
        weights beyond the embedding table; a tree ensemble's nodes."""
        ...

    def evaluate(self, model: Any, data, task, batch_size: int) -> float:
        """``task.metric`` of ``model`` over every row of ``data``."""
        ...

    def predict(self, model: Any, task, ids, values) -> np.ndarray:
        """What ``model`` predicts for encoded rows, as :meth:`trails.task.Task.outputs` reads it."""
        ...

    def export(self, model: Any, task, n_fields: int, fmt: str) -> bytes:
        """``model`` followed by ``task``'s output as a graph in ``fmt`` (one of
        :attr:`export_formats`); see :mod:`trails.export` for the graph's inputs and output."""
        ...


@dataclass(frozen=True)
class Candidate:
    """One configuration of one family: what the race trains and the registry stores.

    Attributes:
        family: the family's name (:attr:`ModelFamily.name`).
        config: the family's configuration (hashable; for the MLP the arch tuple).
        resumed_from: the stored model it starts from (a warm start:
            :mod:`trails.families.stored_start`), None for a fresh one; the two are different
            candidates and may race side by side.
    """

    family: str
    config: Hashable
    resumed_from: int | None = None

    @property
    def text(self) -> str:
        """The candidate as text: the MLP's is its arch (``"64-128-64"``), another family's is
        ``family:configuration`` (see the module docstring); a resumed one's ends with
        ``@model<id>`` (:data:`RESUMED_MARK`)."""
        origin = "" if self.resumed_from is None else f"{RESUMED_MARK}{self.resumed_from}"
        return self.stored_text + origin

    @property
    def stored_text(self) -> str:
        """The text of its configuration alone (what ``trails.models.arch`` stores: a model
        is a model of its configuration, however it started)."""
        config = get_family(self.family).config_text(self.config)
        return config if self.family == DEFAULT_FAMILY else f"{self.family}{FAMILY_SEPARATOR}{config}"

    def __str__(self) -> str:
        return self.text

    def seed(self, run_seed: int) -> int:
        """This candidate's seed in a run seeded ``run_seed``: a function of the run's seed and
        the candidate's text only, so its initial weights do not depend on its position among the
        others."""
        return zlib.crc32(f"{int(run_seed)}:{self.text}".encode()) & CANDIDATE_SEED_MASK


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Make ``family`` known by its name (a later registration of the same name replaces it);
    returns it."""
    if FAMILY_SEPARATOR in family.name or not family.name:
        raise ValueError(f"a family's name must be non-empty and hold no {FAMILY_SEPARATOR!r}: {family.name!r}")
    _FAMILIES[family.name] = family
    return family


def family_names() -> tuple[str, ...]:
    """The names of the registered families, sorted."""
    return tuple(sorted(_FAMILIES))


def get_family(name: str | None) -> ModelFamily:
    """The family called ``name`` (None: :data:`DEFAULT_FAMILY`).

    Raises:
        TrailsError: for a family that is not registered (its HINT lists those that are).
    """
    name = DEFAULT_FAMILY if name is None else name
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise TrailsError(f"unknown model family {name!r}",
                          hint="known families: " + ", ".join(family_names())) from None


def as_candidate(entry) -> Candidate:
    """``entry`` as a :class:`Candidate`: a Candidate as it is, a sequence of widths as an MLP
    arch, a text as :func:`parse_candidate` reads it.

    Raises:
        TrailsError: for an entry that names no candidate (e.g. an arch with a width < 1).
    """
    if isinstance(entry, Candidate):
        return entry
    if isinstance(entry, str):
        return parse_candidate(entry)
    try:
        widths = tuple(int(width) for width in entry)
    except (TypeError, ValueError):
        raise TrailsError(f"the candidate {entry!r} is not a sequence of widths, e.g. (8, 16, 32)") from None
    if not widths or min(widths) < 1:
        raise TrailsError(f"the candidate {entry!r} has no hidden layer or a width < 1, but every "
                          "width must be >= 1")
    return Candidate(DEFAULT_FAMILY, widths)


def parse_candidate(text: str) -> Candidate:
    """The candidate ``text`` names: ``family:configuration``, or an MLP arch without a prefix,
    either followed by ``@model<id>`` for a resumed one (inverse of :attr:`Candidate.text`).

    Raises:
        TrailsError: for an unknown family or a configuration its family cannot read.
    """
    text = str(text).strip()
    resumed_from = None
    if RESUMED_MARK in text:
        text, _, origin = text.rpartition(RESUMED_MARK)
        if not origin.isdigit():
            raise TrailsError(f"the candidate {text + RESUMED_MARK + origin!r} names no stored model after "
                              f"{RESUMED_MARK!r}", hint=f"e.g. 64-128-64{RESUMED_MARK}12")
        resumed_from = int(origin)
    name, separator, config = text.partition(FAMILY_SEPARATOR)
    if not separator:
        name, config = DEFAULT_FAMILY, text
    family = get_family(name.strip())
    return Candidate(family.name, family.parse_config(config), resumed_from)
