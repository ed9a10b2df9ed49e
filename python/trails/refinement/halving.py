"""Successive halving over the candidates: the archs that filtering kept, and configurations
of other model families (:mod:`trails.families`) in the same race.

Successive halving (Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
Hyperparameter Optimization", AISTATS 2016, https://arxiv.org/abs/1502.07943; the inner loop of
Hyperband, Li et al., JMLR 2018, https://arxiv.org/abs/1603.06560) trains every candidate a
little, keeps the best 1/η, trains those longer, and so on until one is left or the maximum
resource is reached. The resource is counted in *units*: an epoch for an MLP, a block of
``settings.rounds_per_unit`` boosting rounds for trees (the planner sizes it to cost about an
MLP epoch, so that a rung's units cost about the same whatever the family); below, "epochs"
means units:

* rung 0 trains all K candidates to r = U epochs,
* rung i keeps the best ⌊n_{i-1}/η⌋ (at least 1) of rung i−1 by the valid metric (ROC-AUC for a binary label) and trains them to
  r·η^i epochs, never more than R = ``max_epochs``,

exactly the rungs of :func:`trails.refinement.schedule.halving_rungs`, so the epochs trained are
:func:`~trails.refinement.schedule.planned_epochs` — what the coordinator budgeted.

Unlike TRAILS, which retrains every survivor from scratch at each rung, a survivor here
**continues**: its weights, Adam state, learning-rate schedule and shuffling generator carry over
(:class:`~trails.refinement.trainer.Trial`), so rung i costs only r_i − r_{i−1} more epochs per
model.

The winner is the model with the best valid score among all evaluations (any rung), with its
weights as they were when evaluated; without a deadline that is normally the last rung's model.
Rung decisions are taken on a stratified sample of the valid split of at most
``settings.decision_valid_rows`` rows (the whole split when it is smaller), so that a large table
does not make every evaluation expensive; an MLP winner's reported valid score is then measured
once more on the whole split (a trees winner's is not: ``ModelFamily.rescored``). Every training
step keeps, before the deadline, the time the best model so far will need to be predicted after
the race (``ModelFamily.prediction_seconds``: a large trees model predicts the test split
slowly).
**Time the winner leaves.** A trees winner early-stops (its loss on the decision sample stopped
improving) and may end its finishing phase long before the deadline. The time left goes, while
at least :data:`RUNNER_UP_MIN_SHARE` of the refinement's time is left (not the last seconds an
MLP winner's finishing keeps for its evaluation):

1. to the *reserves* (``HalvingConfig.reserves``): candidates that did not enter the race (the
   trees configurations the race had no slot for), each trained from scratch by its family's
   finishing phase (trees: early-stopped), in the order given; a reserve that raises loses with
   its reason, the others go on;
2. then to variations of the best model so far (its family's
   :meth:`~trails.families.base.ModelFamily.variations`: trees at half the rate, or more
   regularised), trained from scratch the same way, one at a time, each time the first untried
   variation of the best model then — a greedy local search that moves whenever a variation
   wins — until the best has no untried variation;
3. then to the runners-up, best first (the last rung's candidates before earlier rungs'
   losers), each finished from where its rungs left it — an MLP runner-up trains to the
   deadline.

The best evaluation of all is the winner, as always.
When the deadline passes, training stops between two iterations and the best model evaluated so
far is returned (``deadline_hit``); if none was evaluated yet, the interrupted one is evaluated
so that there is always a winner.

The algorithm lives here; the rest of the run is in small modules beside it:
:mod:`~trails.refinement.steps` (what one candidate does in a rung),
:mod:`~trails.refinement.finishing` (the winner's finishing phase),
:mod:`~trails.refinement.executor` (where candidates train: the :class:`Executor` protocol and
:class:`LocalExecutor`), :mod:`~trails.refinement.book` (the run's bookkeeping,
:class:`RungBook`) and :mod:`~trails.refinement.results` (what it returns).

Example::

    import torch
    from trails.refinement.data import SplitTensors
    from trails.refinement.halving import successive_halving
    from trails.refinement.trainer import TrainingSettings

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (4000, 5), generator=g)
    labels = (ids[:, 0] < 25).long()
    data = SplitTensors(ids, torch.ones(4000, 5), labels)
    result = successive_halving([(8,), (16, 8), (32, 16)], data, data, n_ids=50, n_fields=5,
                                u=1, eta=3, max_epochs=3,
                                settings=TrainingSettings(batch_size=128, iter_per_epoch=10))
    print(result.winner.text, result.valid_score, result.planned_epochs == result.trained_epochs)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from trails.errors import TrailsError
from trails.families import Candidate, as_candidate, get_family
from trails.families.stored_start import starts_by_candidate
from trails.refinement.book import RungBook, TrialHandle
from trails.refinement.data import SplitTensors
from trails.refinement.executor import Executor, LocalExecutor
from trails.refinement.finishing import FINISH_EVALUATION_MARGIN, finish_trial
from trails.refinement.precision import resolve_precision
from trails.refinement.results import HalvingResult, Progress, RungResult
from trails.refinement.schedule import Rung, halving_rungs, planned_epochs
from trails.refinement.steps import Advance, HalvingContext, StopCheck, advance_trial, timed_evaluation
from trails.refinement.trainer import Cancelled, TrainingSettings, default_device
from trails.task import BINARY_01, Task

__all__ = ["Advance", "Cancelled", "Executor", "HalvingConfig", "HalvingContext", "HalvingResult",
           "LocalExecutor", "Progress", "RungBook", "RungResult", "advance_trial", "finish_trial", "halve",
           "successive_halving", "timed_evaluation"]


@dataclass(frozen=True)
class HalvingConfig:
    """What a run of successive halving is asked to do (the paper's symbols in brackets).

    Attributes:
        u: the minimum resource r: epochs of every model in the first rung (U), >= 1.
        eta: the reduction factor η: each rung keeps the best ⌊1/η⌋, >= 2.
        max_epochs: the maximum resource R: no model trains more epochs, >= u.
        settings: how every candidate trains (:class:`~trails.refinement.trainer.TrainingSettings`).
        seed: run seed; candidate seeds come from
            :meth:`~trails.families.base.Candidate.seed`. On the CPU the same
            seed and data give the same result.
        finish: with a deadline, train the best candidate on after the last rung until the
            deadline (:func:`~trails.refinement.finishing.finish_trial`).
        task: what the candidates predict (output width, loss) and the metric every decision
            uses (:meth:`Task.better` handles lower-is-better metrics).
        reserves: candidates trained when a finished winner leaves time (see the module
            docstring), in this order; only with ``finish`` and a deadline.
        starts: :class:`~trails.families.stored_start.StoredStart` values: candidates that start
            from stored weights (a warm start) instead of fresh ones.
    """

    u: int
    settings: TrainingSettings
    eta: int = 3
    max_epochs: int = 27
    seed: int = 0
    finish: bool = False
    task: Task = BINARY_01
    reserves: tuple = ()
    starts: tuple = ()


def successive_halving(
    candidates: Sequence,
    train_data: SplitTensors,
    valid_data: SplitTensors,
    n_ids: int,
    n_fields: int,
    u: int,
    eta: int = 3,
    max_epochs: int = 27,
    settings: TrainingSettings | None = None,
    seed: int = 0,
    device=None,
    deadline: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[Progress], None] | None = None,
    finish: bool = False,
    task: Task = BINARY_01,
    executor: Executor | None = None,
    reserves: Sequence = (),
    starts: Sequence = (),
) -> HalvingResult:
    """Successive halving over ``candidates`` (see the module docstring): :func:`halve` with a
    :class:`HalvingConfig` of ``u``, ``eta``, ``max_epochs``, ``settings`` (``[refinement]`` of
    ``config.ini`` when None), ``seed``, ``finish``, ``task``, ``reserves`` and ``starts``; the other
    arguments as there.
    """
    settings = settings if settings is not None else TrainingSettings.from_config()
    config = HalvingConfig(u=u, settings=settings, eta=eta, max_epochs=max_epochs, seed=seed, finish=finish,
                           task=task, reserves=tuple(as_candidate(entry) for entry in reserves),
                           starts=tuple(starts))
    return halve(candidates, train_data, valid_data, n_ids, n_fields, config, device=device, deadline=deadline,
                 should_stop=should_stop, progress=progress, executor=executor)


def halve(candidates: Sequence, train_data: SplitTensors, valid_data: SplitTensors,
          n_ids: int, n_fields: int, config: HalvingConfig, *, device=None, deadline: float | None = None,
          should_stop: Callable[[], bool] | None = None, progress: Callable[[Progress], None] | None = None,
          executor: Executor | None = None) -> HalvingResult:
    """Successive halving over ``candidates`` as ``config`` says (see the module docstring).

    Args:
        candidates: the K candidates, best-scored first (ties in valid score keep this order):
            :class:`~trails.families.base.Candidate` values of any family, or MLP archs as
            sequences of widths.
        train_data, valid_data: the splits (moved to ``device`` when elsewhere).
        n_ids, n_fields: the layout's embedding-table size and fields per row.
        config: :class:`HalvingConfig`.
        device: ``"cuda"``/``"cpu"``; CUDA when available when None.
        deadline: a ``time.monotonic()`` value; the run stops cleanly when it passes.
        should_stop: checked before every iteration (keep it cheap); true cancels the run.
        progress: called with a :class:`Progress` after every epoch and every evaluation (with a
            Ray executor: after every evaluation only).
        executor: where the candidates train (:class:`Executor`): :class:`LocalExecutor` (this
            process, one after the other) when None, or a
            :class:`~trails.refinement.ray_executor.RayExecutor`. Rungs, promotion, the winner
            and the whole-split evaluation are decided here either way.

    Returns:
        :class:`HalvingResult`.

    Raises:
        Cancelled: when ``should_stop()`` returned true.
        TrailsError: for an argument out of its range, e.g. "the reduction factor eta is 1, but
            must be eta >= 2", or a valid split with a single class.
    """
    started = time.monotonic()
    entries = _validate_candidates(candidates)  # Candidate values, in the caller's order
    finishing = config.finish and deadline is not None
    schedule = halving_rungs(len(entries), config.u, config.eta, config.max_epochs, finishing)
    settings, task = config.settings, config.task
    settings.validate()
    device = torch.device(device) if device is not None else default_device()
    train_data, valid_data = train_data.to(device), valid_data.to(device)
    if len(train_data) == 0 or len(valid_data) == 0:
        raise TrailsError(f"successive halving needs rows in both splits, got {len(train_data)} train "
                          f"and {len(valid_data)} valid rows")
    decision_data = valid_data.stratified_sample(settings.decision_valid_rows, config.seed)
    planned = planned_epochs(len(entries), config.u, config.eta, config.max_epochs, finishing)
    # The cosine horizon: the most units any candidate may train is the last rung's total;
    # when finishing, the winner's horizon is set once its final epochs are known (constant
    # learning rate until then).
    max_units = None if finishing else schedule[-1].total_epochs

    book = RungBook(schedule, planned, progress, task)
    final_rows = len(valid_data) if decision_data is not valid_data else 0
    context = HalvingContext(train_data, decision_data, int(n_ids), int(n_fields), settings, int(config.seed),
                             device, task, max_units, deadline, StopCheck(should_stop), final_rows,
                             starts_by_candidate(config.starts))
    executor = executor if executor is not None else LocalExecutor()
    try:
        executor.prepare(context)
        _run_rungs(entries, schedule, finishing, executor, context, book, started,
                   tuple(as_candidate(entry) for entry in config.reserves))
    finally:
        executor.release(context)
    best = book.best
    valid_score, valid_rows = best.valid_score, len(decision_data)
    # the decisions saw a sample: the winner's figure comes from the whole split — unless the
    # deadline has passed or would pass during it (a large trees model evaluates slowly): the
    # sample's figure stands then
    if (final_rows and get_family(best.candidate.family).rescored and not book.deadline_hit
            and _whole_split_fits(book, len(valid_data), len(decision_data), deadline)):
        valid_score, valid_rows = _whole_split_score(book, context, valid_data), len(valid_data)
    return HalvingResult(
        rungs=book.results, schedule=schedule, winner=best.candidate, winner_epochs=best.total_epochs,
        valid_score=valid_score, valid_rows=valid_rows, decision_score=best.valid_score,
        decision_rows=len(decision_data), state_dict=book.best_state, planned_epochs=planned,
        trained_epochs=book.trained_epochs, deadline_hit=book.deadline_hit,
        seconds=time.monotonic() - started, n_ids=int(n_ids), n_fields=int(n_fields),
        settings=settings, seed=int(config.seed), device=executor.device_name(device),
        finish_epochs=book.finish_epochs, task=task, training_dtype=_training_dtype(settings, executor, device),
        failures=book.failures)


def _training_dtype(settings: TrainingSettings, executor: Executor, device: torch.device) -> str:
    """What training's forward pass ran in on the executor's device, as text."""
    return str(resolve_precision(settings.precision, executor.device_name(device)) or torch.float32)


def _whole_split_fits(book: RungBook, valid_rows: int, decision_rows: int, deadline: float | None) -> bool:
    """Whether evaluating the winner on ``valid_rows`` rows ends before ``deadline``, at the rate
    of the longest evaluation of the ``decision_rows``-row sample so far (with the finishing
    phase's margin)."""
    if deadline is None:
        return True
    estimate = FINISH_EVALUATION_MARGIN * book.evaluation_s * valid_rows / max(1, decision_rows)
    return time.monotonic() + estimate <= deadline


def _whole_split_score(book: RungBook, context: HalvingContext, valid_data: SplitTensors) -> float:
    """The best model's score on the whole valid split (reported)."""
    best, settings, task = book.best, context.settings, context.task
    family = get_family(best.candidate.family)
    winner = family.from_snapshot(best.candidate.config, book.best_state, context.n_ids, context.n_fields, settings,
                                  task, context.device)
    score = family.evaluate(winner, valid_data, task, settings.eval_batch_size)
    book.report(f"winner {best.candidate.text}: valid {task.metric} {score:.4f} on the whole valid split "
                f"({len(valid_data)} rows; {best.valid_score:.4f} on the {len(context.decision_data)}-row sample)",
                book.n_rungs)
    return score


def _validate_candidates(candidates) -> list[Candidate]:
    """Every candidate as a :class:`Candidate` (:func:`~trails.families.base.as_candidate`).

    Raises:
        TrailsError: for an entry that names no candidate, or none at all.
    """
    entries = [as_candidate(entry) for entry in (candidates if candidates is not None else ())]
    if not entries:
        raise TrailsError("the number of candidates K is 0, but must be K >= 1")
    return entries


def _run_rungs(entries: list[Candidate], schedule: list[Rung], finishing: bool, executor: Executor,
               context: HalvingContext, book: RungBook, started: float, reserves: tuple = ()) -> None:
    """The rungs, promotion between them and the finishing phase, then the time it leaves (the
    run began at ``started``, ``time.monotonic()``); ``book`` holds the outcome (at least one
    evaluation once it returns)."""
    survivors: list = list(entries)  # a Candidate until the candidate is first trained
    ranking: list[TrialHandle] = []  # every evaluated candidate, best first (later rungs first)
    for rung_index, rung in enumerate(schedule):
        evaluated = executor.train_rung(survivors, rung_index, rung, _keeping(context, book), book)
        ranked = _promote(evaluated, len(evaluated), context.task)
        ranking = ranked + [handle for handle in ranking if all(handle is not other for other in ranked)]
        if book.deadline_hit or rung_index == len(schedule) - 1:
            break
        survivors = ranked[:schedule[rung_index + 1].n_models]
    # finishing with one candidate there is no rung: nothing to choose, it trains to the deadline
    leader: TrialHandle = book.best_trial if book.best_trial is not None else executor.fresh(entries[0], context)
    if finishing and not book.deadline_hit:
        executor.finish(leader, _keeping(context, book), book)
        _use_time_left(list(reserves), [handle for handle in ranking if handle is not leader], executor, context,
                       book, started, tried={*entries, *reserves})
    if book.best is None:  # the deadline left no time to train: the untrained candidate
        book.mark_deadline_hit()
        executor.evaluate_as_is(leader, context, book)


RUNNER_UP_MIN_SHARE = 0.1
"""Share of the refinement's time that must be left for a reserve's or a runner-up's finishing
phase to start."""


def _use_time_left(reserves: list[Candidate], ranking: list[TrialHandle], executor: Executor,
                   context: HalvingContext, book: RungBook, started: float, tried: set) -> None:
    """Finish the ``reserves`` from scratch, then variations of the best model, then the
    runners-up of ``ranking`` in its order, while :data:`RUNNER_UP_MIN_SHARE` of the time from
    ``started`` to the deadline is left (see the module docstring); ``tried``: the candidates
    already in the run. Each finishing phase is recorded as final. A reserve or variation whose
    training raises — or a runner-up's finishing phase — loses (:meth:`RungBook.record_failure`);
    a cancel is raised."""
    def time_left() -> bool:
        left = _keeping(context, book).deadline - time.monotonic()
        return not book.deadline_hit and left >= RUNNER_UP_MIN_SHARE * (context.deadline - started)

    def finish(candidate: Candidate, handle=None) -> None:
        try:
            executor.finish(handle if handle is not None else executor.fresh(candidate, context),
                            _keeping(context, book), book)
        except Exception as error:  # this one cannot train: it loses, the run goes on (it has a winner)
            if context.is_stop(error):
                raise
            book.record_failure(candidate, book.n_rungs, error)

    def from_scratch(candidate: Candidate, why: str) -> None:
        tried.add(candidate)
        book.report(f"time left: {candidate.text} ({why}) trains from scratch", book.n_rungs)
        finish(candidate)

    for candidate in reserves:
        if not time_left():
            return
        from_scratch(candidate, "no place in the race")
    while time_left() and book.best is not None:
        best = book.best.candidate
        variation = next((Candidate(best.family, config) for config in get_family(best.family).variations(best.config)
                          if Candidate(best.family, config) not in tried), None)
        if variation is None:
            break
        from_scratch(variation, f"a variation of the best, {best.text}")
    for handle in ranking:
        if not time_left():
            return
        finish(handle.candidate, handle)


def _keeping(context: HalvingContext, book: RungBook) -> HalvingContext:
    """``context`` with a deadline that keeps the time the best model so far needs to be
    predicted after the race (its family's
    :meth:`~trails.families.base.ModelFamily.prediction_seconds`: a large trees model
    predicts the test split slowly), so that no later training spends it."""
    best = book.best
    if context.deadline is None or best is None:
        return context
    keep = get_family(best.candidate.family).prediction_seconds(best.total_epochs, context.settings)
    return context if keep <= 0 else dataclasses.replace(context, deadline=context.deadline - keep)


def _promote(evaluated: list[tuple[float, int, TrialHandle]], n_next: int, task: Task) -> list[TrialHandle]:
    """The best ``n_next`` candidates by the task's metric; ties keep the candidates' order."""
    ranked = sorted(evaluated, key=lambda item: (task.sort_key(item[0]), item[1]))
    return [handle for _, _, handle in ranked[:n_next]]
