"""One call, one context: a dataset resolved once, in the caller's session.

:func:`resolve_context` turns a dataset name and a label into a :class:`DatasetContext` — the
schema-qualified tables, the field layout, the row count of each split, the search space and
the scoring inputs of the TFMEMs (with the batch of rows the data-dependent ones need) — with
one pass over the catalog and one read of each thing. Every phase of a call (profiling,
filtering, refinement, storing) takes that object; none of them resolves the name again.
"""

from __future__ import annotations

import time

import numpy as np
from dataclasses import dataclass

from trails.config import Config, load_config
from trails.data.batches import read_encoded
from trails.data.dataset import SPLITS, Dataset, resolve_dataset
from trails.data.layout import Layout
from trails.data.layout_store import get_or_create_layout
from trails.data.session import Session
from trails.errors import TrailsError
from trails.space import SearchSpace
from trails import tfmem as tfmems  # its metric objects (and torch) are imported on first use


@dataclass(frozen=True)
class DatasetContext:
    """A dataset as one call sees it.

    Attributes:
        dataset: the resolved tables of the three splits.
        layout: how its rows become ids and values (stored in ``trails.layouts``).
        rows: rows of each split, ``{"train": n, "valid": n, "test": n}`` (NULL labels included).
        space: the search space for this dataset (the large-width one for big train splits).
        scoring: the TFMEMs' inputs; ``scoring.batch`` is set when a data-dependent TFMEM was asked for.
        resolve_s: seconds :func:`resolve_context` took.
    """

    dataset: Dataset
    layout: Layout
    rows: dict
    space: SearchSpace
    scoring: "tfmems.ScoringInputs"
    resolve_s: float = 0.0

    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def label(self) -> str:
        return self.layout.label


def count_split_rows(session: Session, dataset: Dataset) -> dict:
    """Rows of each split, one ``count(*)`` per split: ``{"train": n, "valid": n, "test": n}``."""
    return {split: session.query(f"SELECT count(*) AS n {dataset.source(split)}")[0]["n"] for split in SPLITS}


def space_for(train_rows: int, config: Config | None = None) -> SearchSpace:
    """The configured search space; the large-width one for criteo-sized train splits
    (``[space] large_rows`` rows or more)."""
    config = config or load_config()
    return SearchSpace.from_config(config, large=train_rows >= config.getint("space", "large_rows"))


def read_scoring_batch(session: Session, dataset: Dataset, layout: Layout, rows: int,
                       embedding_dim: int) -> "tfmems.TfmemBatch":
    """The first ``rows`` labelled train rows as a :class:`TfmemBatch` (a regression target
    becomes two classes, above and below the batch's median).

    Raises:
        TrailsError: when the train split has no labelled row.
    """
    encoded = read_encoded(session, dataset, layout, "train", limit=rows)
    if len(encoded) == 0:
        raise TrailsError(f"the train split of \"{dataset.name}\" has no labelled row",
                          hint="load rows with a non-NULL label")
    labels = encoded.labels
    if not layout.task.is_classification:  # the data-dependent TFMEMs score classifiers
        labels = (labels > np.median(labels)).astype(np.int64)
    return tfmems.TfmemBatch.from_numpy(encoded.ids, encoded.values, labels, n_ids=layout.n_ids,
                                 embedding_dim=embedding_dim)


def resolve_context(session: Session, dataset: str, label: str, tfmem: str | None = None,
                    batch_rows: int | None = None, task: str = "auto", extends: Layout | None = None,
                    resolved: Dataset | None = None) -> DatasetContext:
    """Resolve ``dataset`` once, in ``session`` (its search_path and privileges).

    Args:
        session: where the tables are read (SPI in the backend, psycopg2 out of it).
        dataset: a table name, or the stem of ``<name>_train/_valid/_test``.
        label: the label column.
        tfmem: the TFMEM the call will score with; when it is data-dependent, the scoring batch
            (``batch_rows`` rows, default ``[tfmem] batch_size``) is read now.
        batch_rows: rows of the scoring batch.
        task: ``auto`` or the task asked for; the layout's task is what it resolved to, and
            the notes of resolving the label (rows and classes left out) are sent as NOTICEs.
        extends: a stored layout whose ids to keep (a warm start: see
            :func:`~trails.data.layout_store.get_or_create_layout`).
        resolved: ``dataset`` already resolved in this session (not looked up again).

    Raises:
        TrailsError: for an unknown dataset or label, an unusable table or label, a bad
            ``batch_rows``.
        CannotExtend: when ``extends`` cannot describe the table now.
    """
    started = time.perf_counter()
    if not label:
        raise TrailsError("label must name a column", hint="e.g. label => 'label'")
    config = load_config()
    batch_rows = config.getint("tfmem", "batch_size") if batch_rows is None else batch_rows
    if batch_rows <= 0:
        raise TrailsError(f"batch_size must be a positive integer, got {batch_rows}", hint="e.g. 32")
    if tfmem is not None and tfmem not in tfmems.METRIC_NAMES:
        tfmems.get_metric(tfmem)  # raises: unknown TFMEM
    # the dataset, its layout and the label's checks need no torch: a bad label is refused
    # before a fresh backend spends seconds importing it
    resolved = resolved if resolved is not None else resolve_dataset(session, dataset)
    rows = count_split_rows(session, resolved)
    layout = get_or_create_layout(session, resolved, label, train_rows=rows["train"], task=task,
                                  extends=extends)
    for note in layout.notes:
        session.notice(note)
    embedding_dim = config.getint("refinement", "embedding_dim")
    metric = tfmems.get_metric(tfmem) if tfmem is not None else None
    batch = None
    if metric is not None and not metric.data_agnostic:
        batch = read_scoring_batch(session, resolved, layout, batch_rows, embedding_dim)
    scoring = tfmems.ScoringInputs(layout.n_fields * embedding_dim, batch, layout.task.n_outputs)
    return DatasetContext(resolved, layout, rows, space_for(rows["train"], config), scoring,
                          time.perf_counter() - started)
