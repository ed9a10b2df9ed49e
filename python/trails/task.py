"""What a model predicts: the task (binary, multiclass, regression), its label encoding and metric.

A :class:`Task` is resolved once per (dataset, label) by :func:`trails.data.label.resolve_task`
and stored with the layout, so training, the refinement service, predict and export all
encode the label and read the network's output alike:

* **binary** — the label's two values as ``classes`` (negative, positive); the network has two
  logits, trained with cross-entropy; the output is P(positive).
* **multiclass** — ``classes`` in class-index order; one logit per class, cross-entropy; the
  output is the softmax over the classes.
* **regression** — one output trained with MSE on the target standardised with the train
  ``mean`` and ``std``; the output is un-standardised (``mean + std · y``).

Metrics come from ``sklearn.metrics``; :meth:`Task.better` says which of two scores wins
(lower-is-better metrics such as ``log_loss`` and ``rmse`` are handled there, nowhere else).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from trails.errors import TrailsError, sql_text

TASKS = ("binary", "multiclass", "regression")
# metric → higher is better; the first of each task is its default
METRICS = {
    "binary": {"roc_auc": True, "log_loss": False, "accuracy": True},
    "multiclass": {"accuracy": True, "log_loss": False, "macro_f1": True, "roc_auc_ovr": True},
    "regression": {"rmse": False, "mae": False, "r2": True},
}


def escaped_literal(value: str) -> str:
    """``value`` as an ``E'...'`` SQL literal (backslashes and quotes escaped): the same text
    whatever ``standard_conforming_strings`` is. Class values come from table data."""
    return "E'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def check_task_argument(task) -> None:
    """Raise TrailsError unless ``task`` is ``auto`` or one of :data:`TASKS`."""
    if task not in ("auto", *TASKS):
        raise TrailsError(f"unknown task {sql_text(task)}",
                          hint="valid: auto (from the label column), binary, multiclass, regression")


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` (a key of :data:`METRICS`' tables) is a better model."""
    return next((table[metric] for table in METRICS.values() if metric in table), True)


def check_metric_argument(metric, task: str | None = None) -> None:
    """Raise TrailsError unless ``metric`` is NULL or a metric of ``task`` (of any task when
    ``task`` is None or ``auto``)."""
    if metric is None:
        return
    tasks = [task] if task in METRICS else list(METRICS)
    if not any(metric in METRICS[t] for t in tasks):
        valid = "; ".join(f"{t}: {', '.join(METRICS[t])}" for t in tasks)
        raise TrailsError(f"unknown metric {sql_text(metric)}" + (f" for task '{task}'" if task in METRICS else ""),
                          hint=f"valid: {valid} (NULL: the task's default)")


@dataclass(frozen=True)
class Task:
    """A resolved task.

    Attributes:
        kind: ``binary``, ``multiclass`` or ``regression``.
        classes: the label's values as text, in class-index order (binary: negative, positive);
            empty for regression.
        mean, std: the train target's mean and standard deviation (regression).
        metric: the metric the run selects with (a key of ``METRICS[kind]``).
    """

    kind: str
    classes: tuple = ()
    mean: float = 0.0
    std: float = 1.0
    metric: str = ""

    def __post_init__(self):
        if self.kind not in TASKS:
            raise ValueError(f"unknown task kind {self.kind!r}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if not self.metric:
            object.__setattr__(self, "metric", next(iter(METRICS[self.kind])))
        check_metric_argument(self.metric, self.kind)

    # --- shape of the network and of the label -------------------------------------------
    @property
    def n_outputs(self) -> int:
        """Logits of the network: 2 for binary, one per class, 1 for regression."""
        return 1 if self.kind == "regression" else len(self.classes)

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    @property
    def positive(self) -> str | None:
        """The positive class (binary only)."""
        return self.classes[1] if self.kind == "binary" else None

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.kind][self.metric]

    def with_metric(self, metric: str | None) -> "Task":
        """The same task selecting with ``metric`` (the default when None)."""
        check_metric_argument(metric, self.kind)
        return replace(self, metric=metric or next(iter(METRICS[self.kind])))

    def better(self, a: float, b: float | None) -> bool:
        """Whether score ``a`` beats ``b`` (None: anything beats it; NaN never wins)."""
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return not (isinstance(a, float) and math.isnan(a))
        return a > b if self.higher_is_better else a < b

    def sort_key(self, score: float) -> float:
        """A key that sorts scores best first (NaN last)."""
        if score != score:
            return math.inf
        return -score if self.higher_is_better else score

    # --- labels ------------------------------------------------------------------------
    def encode_labels(self, raw) -> np.ndarray:
        """Labels as read (text, ``None`` for NULL) → int64 class indices, or float32
        standardised targets (regression). A value outside ``classes`` or NULL becomes -1
        (classification) or NaN (regression); :meth:`Layout.select_sql` keeps such rows out."""
        if self.kind == "regression":
            return self.encode_label_numbers(
                np.array([math.nan if v is None else float(v) for v in raw], dtype=np.float64))
        index = {value: i for i, value in enumerate(self.classes)}
        return np.fromiter((index.get(v, -1) for v in raw), dtype=np.int64, count=len(raw))

    def encode_label_numbers(self, x: np.ndarray) -> np.ndarray:
        """A regression label's float64 values ``(B,)`` → float32 standardised targets."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def label_condition(self, column_sql: str) -> str:
        """The SQL condition keeping rows this task can learn from: label not NULL and, for a
        classification task, one of ``classes`` (rare classes dropped at resolution); for
        regression, a finite number (NaN and ±Infinity are left out, as NULL)."""
        condition = f"{column_sql} IS NOT NULL"
        if self.is_classification:
            condition += f" AND {column_sql}::text IN ({', '.join(escaped_literal(c) for c in self.classes)})"
        else:
            condition += f" AND {column_sql}::float8 NOT IN ('NaN', 'Infinity', '-Infinity')"
        return condition

    # --- network output ----------------------------------------------------------------
    def loss(self, logits, target):
        """Cross-entropy (classification) or MSE on the standardised target (regression)."""
        import torch.nn.functional as F

        if self.kind == "regression":
            return F.mse_loss(logits[:, 0].float(), target)
        return F.cross_entropy(logits, target)

    def outputs(self, logits):
        """Logits ``(B, n_outputs)`` → class probabilities ``(B, C)`` (classification, float64)
        or the un-standardised prediction ``(B,)`` (regression, float64)."""
        import torch

        logits = logits.double()
        if self.kind == "regression":
            return logits[:, 0] * self.std + self.mean
        return torch.softmax(logits, dim=1)

    def decode_targets(self, labels: np.ndarray) -> np.ndarray:
        """Encoded labels → what predictions are compared with: class indices, or targets in
        the label's own units (regression)."""
        if self.kind == "regression":
            return labels.astype(np.float64) * self.std + self.mean
        return labels

    # --- metrics -----------------------------------------------------------------------
    def score(self, labels: np.ndarray, outputs: np.ndarray) -> float:
        """The metric of ``outputs`` (from :meth:`outputs`) against encoded ``labels``.

        Raises:
            TrailsError: when the metric is undefined on these labels (e.g. ROC-AUC of one class).
        """
        from sklearn import metrics  # not at import: a call's arguments are checked first (trainer imports it)

        y = self.decode_targets(np.asarray(labels))
        if not np.isfinite(outputs).all():  # a diverged model: it loses (Task.better), it does not crash
            return math.nan
        name = self.metric
        if self.kind == "regression":
            if name == "rmse":
                return float(math.sqrt(metrics.mean_squared_error(y, outputs)))
            if name == "mae":
                return float(metrics.mean_absolute_error(y, outputs))
            return float(metrics.r2_score(y, outputs))
        present = np.unique(y)
        if name in ("roc_auc", "roc_auc_ovr") and len(present) < 2:
            raise TrailsError(f"{name} needs at least two classes, but the split's {len(y)} rows hold "
                              f"{'none' if len(y) == 0 else 'only ' + repr(self.classes[int(present[0])])}",
                              hint="check the label column of the valid and test splits, or choose "
                                   "metric => 'accuracy'")
        predicted = outputs.argmax(axis=1)
        if name == "accuracy":
            return float(metrics.accuracy_score(y, predicted))
        if name == "macro_f1":
            return float(metrics.f1_score(y, predicted, average="macro",
                                          labels=np.arange(self.n_outputs), zero_division=0))
        if name == "log_loss":
            return float(metrics.log_loss(y, np.clip(outputs, 1e-15, 1.0), labels=np.arange(self.n_outputs)))
        if name == "roc_auc":
            return float(metrics.roc_auc_score(y, outputs[:, 1]))
        # one-vs-rest over the classes present (a class absent from the split has no AUC)
        probabilities = outputs[:, present] / outputs[:, present].sum(axis=1, keepdims=True)
        if len(present) == 2:
            return float(metrics.roc_auc_score(y == present[1], probabilities[:, 1]))
        return float(metrics.roc_auc_score(np.searchsorted(present, y), probabilities, multi_class="ovr"))

    # --- storage -----------------------------------------------------------------------
    def to_json(self) -> dict:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Task":
        return cls(data["kind"], tuple(data.get("classes", ())), float(data.get("mean", 0.0)),
                   float(data.get("std", 1.0)), data.get("metric", ""))


BINARY_01 = Task("binary", ("0", "1"))
