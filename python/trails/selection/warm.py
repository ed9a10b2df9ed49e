"""Warm starts: ``model_selection(..., warm_start => true)`` on a dataset that has a model.

Re-selection when a table grows reuses what the previous selection learnt, in three ways:

1. **Scores.** TFMEM scores of archs are read from ``trails.tfmem_scores``
   (:mod:`trails.selection.score_cache`) instead of computed again; they depend on the
   TFMEM, the seed, the space and the MLP's input and output widths (and a data-dependent
   TFMEM's batch), not on how many rows the table has.
2. **Layout.** The previous model's layout is *extended*, not inferred anew
   (:mod:`trails.data.layout_extend`): old ids keep their meaning, new values get new ids.
3. **Weights.** The previous model's candidate resumes from its stored weights
   (:class:`~trails.families.stored_start.StoredStart`) beside fresh candidates — a fresh
   copy of its configuration included, when filtering chose it again: the resumed one is
   another candidate (``…@model<id>``) — in the place of its family's last fresh one; it
   races and is promoted or dropped like any other.

*The previous model* is the dataset's deployed one when it predicts this label with this
layout's settings, else the newest model that does. Without one, or when it cannot be
continued (another task or classes, a column added, dropped or retyped, weights of other
settings, a family not in the race), the call starts cold where it must — a NOTICE says why —
and still reuses what it can (scores are reused whenever ``warm_start`` is true).

:class:`WarmRecord` is what ``trails.runs.warm_start`` stores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trails import deployments
from trails.data.dataset import resolve_dataset
from trails.data.layout import Layout
from trails.data.layout_extend import CannotExtend, added_values, id_map
from trails.data.layout_store import settings_signature
from trails.data.session import Session
from trails.errors import TrailsError
from trails.selection.prepare import Problem, prepare
from trails.selection.report import Reporter
from trails.selection.request import SelectionRequest
from trails.serving.stored import StoredRow, read_stored


@dataclass(frozen=True)
class Previous:
    """The model a warm start continues: its stored row, and whether it is the deployed one."""

    stored: StoredRow
    deployed: bool


@dataclass
class WarmRecord:
    """What one call reused (``trails.runs.warm_start``; None for ``warm_start => false``).

    Attributes:
        model_id: the previous model (None: there was none).
        deployed: it was the deployed model.
        layout: ``"same"`` (the table had as many train rows), ``"extended"``, or ``"inferred"``
            (a cold layout: see ``cold``).
        added_values: values the extension gave new ids.
        scores_reused, scores_new: archs whose TFMEM score came from the cache / was computed.
        resumed: the candidate resumed from the previous model's weights, or None.
        cold: why a part started cold (layout, weights), in order.
    """

    model_id: int | None = None
    deployed: bool = False
    layout: str = "inferred"
    added_values: int = 0
    scores_reused: int = 0
    scores_new: int = 0
    resumed: str | None = None
    cold: list = field(default_factory=list)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _model_of_label(session: Session, request: SelectionRequest, train_table: str, model_id: int | None) -> int | None:
    """``model_id`` when it predicts ``request.label`` of ``train_table`` with layouts of this
    call's settings, else the dataset's newest model that does (None: none). Refit models
    (``trails.refit``: trained on the valid rows too) are never continued: the race would score
    them on rows they learnt."""
    query = ("SELECT m.model_id FROM trails.models m JOIN trails.layouts l ON l.layout_id = m.layout_id"
             " WHERE m.dataset = $1 AND l.label = $2 AND l.settings = $3 AND l.train_table = $4"
             " AND m.refit_of IS NULL AND NOT (m.hyper ? 'refit_rows')")
    args = [request.dataset, request.label, settings_signature(request.task), train_table]
    types = ["text", "text", "text", "text"]
    if model_id is not None:
        rows = session.query(query + " AND m.model_id = $5", args + [model_id], types + ["bigint"])
        if rows:
            return model_id
    rows = session.query(query + " ORDER BY m.model_id DESC LIMIT 1", args, types)
    return rows[0]["model_id"] if rows else None


def find_previous(session: Session, request: SelectionRequest, train_table: str,
                  record: WarmRecord) -> Previous | None:
    """The model a warm start of ``request`` (whose train split is ``train_table``) continues
    (see the module docstring), or None (``record.cold`` says why)."""
    deployed = deployments.current(session, request.dataset)
    deployed_id = None if deployed is None else deployed["model_id"]
    model_id = _model_of_label(session, request, train_table, deployed_id)
    if model_id is None:
        record.cold.append(f"no model of {request.dataset} predicts \"{request.label}\" of {train_table} with these "
                           "layout settings and task yet (refit models are not continued)")
        return None
    record.model_id, record.deployed = model_id, model_id == deployed_id
    return Previous(read_stored(session, model_id), record.deployed)


def prepare_warm(session: Session, request: SelectionRequest, report: Reporter,
                 record: WarmRecord) -> tuple[Problem, Previous | None]:
    """:func:`~trails.selection.prepare.prepare` keeping the previous model's ids (its layout,
    or its extension), and that model; a layout inferred anew and None when there is no previous
    model or its layout cannot describe the table now (``record`` says which). Reports how the
    layout continued the previous model's.

    Raises:
        TrailsError: as :func:`~trails.selection.prepare.prepare`.
    """
    dataset = resolve_dataset(session, request.dataset)  # once: prepare takes it as resolved
    previous = find_previous(session, request, dataset.train_table, record)
    if previous is not None:
        old = previous.stored.layout
        try:
            problem = prepare(session, request, report, extends=old, dataset=dataset)
        except CannotExtend as error:
            record.cold.append(f"the layout of model {previous.stored.model_id} cannot describe the table now: {error}")
        else:
            same = problem.layout.layout_id == old.layout_id
            record.layout, record.added_values = ("same", 0) if same else ("extended", added_values(old, problem.layout))
            report.warm_layout(record, problem.layout.layout_id)
            return problem, previous
    return prepare(session, request, report, dataset=dataset), None


def _why_not(previous: Previous, layout: Layout, families: tuple, settings, max_params: int | None) -> str | None:
    """Why the previous model's weights cannot start a candidate of this call, or None."""
    stored, hyper = previous.stored, previous.stored.hyper
    if stored.family not in families:
        return f"its family, {stored.family}, is not in this race"
    if stored.family == "mlp":
        from trails.families import parse_candidate
        from trails.families.mlp_config import trained_settings

        width = trained_settings(parse_candidate(stored.arch), settings).embedding_dim  # its recipe's
        if (hyper.get("embedding_dim"), hyper.get("batch_norm")) != (width, settings.batch_norm):
            return (f"it was trained with embedding_dim {hyper.get('embedding_dim')}, batch_norm {hyper.get('batch_norm')};"
                    f" now {width}, {settings.batch_norm}")
    if stored.layout.n_fields != layout.n_fields:
        return "its layout has other fields"
    if max_params is not None and stored.params is not None and stored.params > max_params:
        return f"it has {stored.params} parameters, more than max_params = {max_params}"
    return None


def resume(previous: Previous, layout: Layout, race, settings, max_params: int | None, record: WarmRecord):
    """``race`` with the previous model's candidate resuming from its weights, and its
    :class:`StoredStart` (or ``race`` unchanged and None: ``record.cold`` says why)."""
    from trails.families import Candidate, parse_candidate
    from trails.families.stored_start import StoredStart

    families = tuple(sorted({candidate.family for candidate in race.candidates}))
    try:
        reason = _why_not(previous, layout, families, settings, max_params)  # no candidate of its family: not in it
        candidate: Candidate = parse_candidate(previous.stored.arch)
        mapping = id_map(previous.stored.layout, layout) if reason is None else None
    except (TrailsError, CannotExtend) as error:
        reason = str(error)
    if reason is not None:
        record.cold.append(f"model {previous.stored.model_id} does not resume: {reason}")
        return race, None
    candidate = dataclasses.replace(candidate, resumed_from=previous.stored.model_id)
    others = list(race.candidates)  # it takes the place of its family's last fresh candidate
    others.pop(max(i for i, c in enumerate(others) if c.family == candidate.family))
    record.resumed = candidate.text
    start = StoredStart(candidate, previous.stored.weights, mapping, previous.stored.model_id)
    return dataclasses.replace(race, candidates=(candidate, *others)), start
