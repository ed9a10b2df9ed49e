"""The first phase of a call: the dataset resolved once, its task and label checked.

Needs no torch: a bad dataset, label or task is refused before a fresh backend spends seconds
importing it (the TFMEM's scoring inputs, built last by :func:`~trails.context.resolve_context`,
are what first imports it).
"""

from __future__ import annotations

from dataclasses import dataclass

from trails.context import DatasetContext, resolve_context
from trails.data.dataset import Dataset
from trails.data.layout import Layout
from trails.data.session import Session
from trails.errors import TrailsError
from trails.selection.report import Reporter
from trails.selection.request import SelectionRequest
from trails.task import Task

EVALUATED_SPLITS = ("valid", "test")


@dataclass(frozen=True)
class Problem:
    """The dataset of one call and what it is asked to predict.

    Attributes:
        context: the dataset resolved once (tables, layout, split rows, space, scoring inputs).
        task: the layout's task with the metric the call decides by.
        usable_rows: rows of the valid and test splits whose label the task can use.
    """

    context: DatasetContext
    task: Task
    usable_rows: dict

    @property
    def layout(self):
        return self.context.layout

    @property
    def rows(self) -> dict:
        return self.context.rows


def prepare(session: Session, request: SelectionRequest, report: Reporter, extends: Layout | None = None,
            dataset: Dataset | None = None) -> Problem:
    """Resolve ``request.dataset`` in ``session`` (``dataset``: already resolved; keeping the
    ids of the stored layout ``extends``, when given: a warm start), choose the task's metric,
    report the task (when it was inferred) and check that valid and test have labelled rows.

    Raises:
        TrailsError: for an unknown dataset or label, an unusable label, or a valid or test
            split without a usable label.
        CannotExtend: when ``extends`` cannot describe the table now (nothing reported yet).
    """
    context = resolve_context(session, request.dataset, request.label, request.tfmem, task=request.task,
                              extends=extends, resolved=dataset)
    task = context.layout.task.with_metric(request.metric)
    if request.task == "auto":
        report.task(task, request.label)
    usable = count_usable_rows(session, context, task)
    if usable["valid"] == 0 or usable["test"] == 0:
        empty = [split for split in EVALUATED_SPLITS if usable[split] == 0]
        raise TrailsError(f"dataset \"{request.dataset}\" has no {' and no '.join(empty)} rows to evaluate on",
                          detail=", ".join(f"{split}: {context.rows[split]} rows, {usable[split]} with a label "
                                           "the task can use" for split in EVALUATED_SPLITS),
                          hint="each of train, valid and test needs rows with a (non-NULL, not left out) label")
    return Problem(context, task, usable)


def count_usable_rows(session: Session, context: DatasetContext, task: Task) -> dict:
    """Rows of the valid and test splits whose label ``task`` can use: ``{"valid": n, "test": n}``."""
    condition = task.label_condition(f"t.{session.quote_ident(context.label)}")
    return {split: session.query(f"SELECT count(*) AS n {context.dataset.source(split, condition)}")[0]["n"]
            for split in EVALUATED_SPLITS}
