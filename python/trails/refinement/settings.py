"""How every candidate is trained: :class:`TrainingSettings` (``[refinement]`` of ``config.ini``).

No torch here: the settings travel in a refinement job (:mod:`trails.refinement.jobs`), which
the database backend builds before it needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from trails.config import load_config
from trails.errors import TrailsError

__all__ = ["PRECISIONS", "RECIPE_SETTINGS", "TrainingSettings", "check_precision"]

# What training's forward pass may autocast to (see :mod:`trails.refinement.precision`).
PRECISIONS = ("auto", "fp32", "bf16")


RECIPE_SETTINGS = ("dropout", "weight_decay", "embedding_l2", "numeric_bins", "plateau")
"""The settings of an MLP's recipe that a stored model's ``hyper`` records (``recipe``) and refit
trains with again."""


def check_precision(precision: str) -> None:
    """Raise TrailsError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise TrailsError(f"the value of precision is {precision!r}, but must be one of "
                          + ", ".join(PRECISIONS),
                          hint="set [refinement] precision in config.ini to auto, fp32 or bf16")


def edges_tuple(numeric_edges) -> tuple:
    """``numeric_edges`` (lists from JSON, or tuples) as nested tuples ``((field, id, (q, …)), …)``.

    Raises:
        TrailsError: when an entry is not ``[field index, value id, [quantiles…]]``.
    """
    try:
        return tuple((int(field), int(first_id), tuple(float(q) for q in quantiles))
                     for field, first_id, quantiles in numeric_edges)
    except (TypeError, ValueError):
        raise TrailsError("numeric_edges must be [[field index, value id, [quantiles...]], ...]",
                          hint="send what Layout.numeric_edges() gives") from None


def _optional_int(text: str, name: str) -> int | None:
    """``auto`` (or empty) → None; else the whole number ``text`` names.

    Raises:
        TrailsError: for anything else.
    """
    if text.strip().lower() in ("auto", ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise TrailsError(f"the value of {name} is {text!r}, but must be auto or a whole number",
                          hint=f"set [refinement] {name} in config.ini to auto, 0 or 1") from None


@dataclass(frozen=True)
class TrainingSettings:
    """How every candidate is trained (``[refinement]`` in ``config.ini``).

    Attributes:
        batch_size: rows per training iteration.
        iter_per_epoch: most iterations in one epoch.
        learning_rate: Adam's initial learning rate.
        embedding_dim: numbers per embedded feature id.
        batch_norm: BatchNorm1d after each hidden Linear.
        eval_batch_size: rows per forward pass when scoring a split (memory only; no effect on
            the result).
        precision: ``auto``, ``fp32`` or ``bf16``: whether training's forward pass autocasts
            to bfloat16 (see :mod:`trails.refinement.precision`).
        decision_valid_rows: successive halving's rung decisions evaluate a stratified sample
            of at most this many valid rows (:meth:`SplitTensors.stratified_sample`).
        rounds_per_unit: boosting rounds in one unit of the gradient-boosted trees' resource
            (:mod:`trails.families.gbdt`): what a rung of ``u`` units trains a tree candidate
            for is ``u × rounds_per_unit`` rounds, as it is ``u`` epochs for an MLP.
        max_nodes: the most tree nodes a trees candidate may grow (``max_params``): its rounds
            stop before one could pass it; None: no bound. (An MLP's bound is applied when its
            archs are chosen.)
        predict_s: seconds a trees model takes to predict one row with one tree on this table
            (measured by the planner; 0: unknown), and ``prediction_rows`` the rows the race's
            winner is predicted on after it (the test split): a trees candidate stops boosting
            while the time left still pays for predicting them (:func:`~trails.families.gbdt_training.prediction_reserve`).
        dropout: an MLP's dropout probability after each hidden ReLU while training, in [0, 1).
        weight_decay: decoupled weight decay (AdamW) on an MLP's Linear weights (not its
            biases, BatchNorm or embedding table), ≥ 0; 0 trains with plain Adam.
        embedding_l2: L2 penalty on the embeddings a batch uses (the mean over its rows of the
            squared norm of a row's embedded fields, times this), ≥ 0: it shrinks rare ids'
            rows toward 0 without touching ids the batch does not hold.
        keep_best: the MLP's finishing phase evaluates each epoch and returns the
            best-validated weights (:mod:`trails.refinement.finishing`); False returns the last.
        train_threads: torch intra-op threads an MLP trains with on the CPU (0: the process's
            own setting). One by default: trails runs OpenMP with passive waits (a spinning
            thread steals the cores other backends need), and a passive thread wakes slowly,
            so two threads trained 1.6–2.8x slower than one here (:mod:`trails.refinement.trainer`).
        numeric_bins: an MLP embeds each numeric field piecewise-linearly over at most this many
            bins of its train quantiles (:mod:`trails.piecewise`); 0: linearly (value × vector).
        numeric_edges: the run's numeric fields as ``(field index, value id, quantiles in
            standardised units)``, from the layout (:meth:`trails.data.layout.Layout.numeric_edges`);
            empty: no field can be binned (none is numeric, or an old layout holds no quantiles).
        plateau: the MLP finishing phase's schedule: 0 decays the learning rate by a cosine to 0
            over the iterations that fit; N ≥ 1 holds it and, after N evaluated epochs without
            a better valid score, restores the best weights and divides the rate by 10, the last
            quarter annealed (:mod:`trails.refinement.finishing`); None (the default): chosen by
            the task (:func:`trails.refinement.recipe.task_schedule`; unresolved, a cosine).
    """

    batch_size: int = 512
    iter_per_epoch: int = 200
    learning_rate: float = 1e-3
    embedding_dim: int = 10
    batch_norm: bool = True
    eval_batch_size: int = 8192
    precision: str = "auto"
    decision_valid_rows: int = 50_000
    rounds_per_unit: int = 50
    max_nodes: int | None = None
    predict_s: float = 0.0
    prediction_rows: int = 0
    dropout: float = 0.0
    weight_decay: float = 0.0
    embedding_l2: float = 0.0
    keep_best: bool = True
    train_threads: int = 1
    numeric_bins: int = 0
    numeric_edges: tuple = ()
    plateau: int | None = None

    @classmethod
    def from_config(cls, config=None, **overrides) -> "TrainingSettings":
        """Settings from ``[refinement]`` of ``config`` (``load_config()`` when None); keyword
        arguments that are not None override them. Raises TrailsError for a bad value."""
        config = config if config is not None else load_config()
        section = "refinement"
        settings = cls(
            batch_size=config.getint(section, "batch_size"),
            iter_per_epoch=config.getint(section, "iter_per_epoch"),
            learning_rate=config.getfloat(section, "learning_rate"),
            embedding_dim=config.getint(section, "embedding_dim"),
            batch_norm=config.getboolean(section, "batch_norm"),
            eval_batch_size=config.getint(section, "eval_batch_size", fallback=cls.eval_batch_size),
            precision=config.get(section, "precision", fallback=cls.precision),
            decision_valid_rows=config.getint(section, "decision_valid_rows",
                                              fallback=cls.decision_valid_rows),
            rounds_per_unit=config.getint(section, "rounds_per_unit", fallback=cls.rounds_per_unit),
            dropout=config.getfloat(section, "dropout", fallback=cls.dropout),
            weight_decay=config.getfloat(section, "weight_decay", fallback=cls.weight_decay),
            embedding_l2=config.getfloat(section, "embedding_l2", fallback=cls.embedding_l2),
            keep_best=config.getboolean(section, "keep_best", fallback=cls.keep_best),
            train_threads=config.getint(section, "train_threads", fallback=cls.train_threads),
            numeric_bins=config.getint(section, "numeric_bins", fallback=cls.numeric_bins),
            plateau=_optional_int(config.get(section, "plateau", fallback="auto"), "plateau"),
        )
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "numeric_edges" in overrides:
            overrides["numeric_edges"] = edges_tuple(overrides["numeric_edges"])
        settings = replace(settings, **overrides)
        settings.validate()
        return settings

    def to_json(self) -> dict:
        """Every setting by name (JSON-ready: ``numeric_edges`` as lists, as JSON gives it
        back); :meth:`from_json` reads it back."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["numeric_edges"] = [[field, first_id, list(quantiles)] for field, first_id, quantiles in self.numeric_edges]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TrainingSettings":
        """The settings :meth:`to_json` wrote, validated. Every setting must be there and no
        other: a job carries all the settings its model depends on.

        Raises:
            TrailsError: for a missing or unknown setting, or a value out of its range.
        """
        names = [item.name for item in fields(cls)]
        missing = [name for name in names if name not in data]
        unknown = sorted(set(data) - set(names))
        problems = ([f"lack {', '.join(missing)}"] if missing else []) + (
            [f"have unknown {', '.join(unknown)}"] if unknown else [])
        if problems:
            raise TrailsError("the training settings " + " and ".join(problems),
                              hint="send every field of TrainingSettings: " + ", ".join(names))
        settings = cls(batch_size=int(data["batch_size"]), iter_per_epoch=int(data["iter_per_epoch"]),
                       learning_rate=float(data["learning_rate"]), embedding_dim=int(data["embedding_dim"]),
                       batch_norm=bool(data["batch_norm"]), eval_batch_size=int(data["eval_batch_size"]),
                       precision=str(data["precision"]), decision_valid_rows=int(data["decision_valid_rows"]),
                       rounds_per_unit=int(data["rounds_per_unit"]),
                       max_nodes=None if data["max_nodes"] is None else int(data["max_nodes"]),
                       predict_s=float(data["predict_s"]), prediction_rows=int(data["prediction_rows"]),
                       dropout=float(data["dropout"]), weight_decay=float(data["weight_decay"]),
                       embedding_l2=float(data["embedding_l2"]), keep_best=bool(data["keep_best"]),
                       train_threads=int(data["train_threads"]), numeric_bins=int(data["numeric_bins"]),
                       numeric_edges=edges_tuple(data["numeric_edges"]),
                       plateau=None if data["plateau"] is None else int(data["plateau"]))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise TrailsError naming the first value out of its range."""
        for name in ("batch_size", "iter_per_epoch", "embedding_dim", "eval_batch_size", "decision_valid_rows",
                     "rounds_per_unit"):
            value = getattr(self, name)
            if int(value) < 1:
                raise TrailsError(f"the value of {name} is {value}, but must be {name} >= 1")
        if self.max_nodes is not None and int(self.max_nodes) < 1:
            raise TrailsError(f"the value of max_nodes is {self.max_nodes}, but must be NULL or max_nodes >= 1")
        if not (self.predict_s >= 0 and int(self.prediction_rows) >= 0):
            raise TrailsError(f"predict_s ({self.predict_s}) and prediction_rows ({self.prediction_rows}) must be >= 0")
        if not self.learning_rate > 0:
            raise TrailsError(f"the value of learning_rate is {self.learning_rate}, but must be "
                              "learning_rate > 0")
        if int(self.numeric_bins) < 0:
            raise TrailsError(f"the value of numeric_bins is {self.numeric_bins}, but must be numeric_bins >= 0")
        if self.plateau is not None and int(self.plateau) < 0:
            raise TrailsError(f"the value of plateau is {self.plateau}, but must be auto or plateau >= 0")
        if int(self.train_threads) < 0:
            raise TrailsError(f"the value of train_threads is {self.train_threads}, but must be train_threads >= 0")
        if not 0 <= self.dropout < 1:
            raise TrailsError(f"the value of dropout is {self.dropout}, but must be 0 <= dropout < 1")
        for name in ("weight_decay", "embedding_l2"):
            if not getattr(self, name) >= 0:
                raise TrailsError(f"the value of {name} is {getattr(self, name)}, but must be {name} >= 0")
        check_precision(self.precision)
