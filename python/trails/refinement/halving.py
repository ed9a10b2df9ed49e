"""Successive halving over the candidate archs that filtering kept.

Successive halving (Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
Hyperparameter Optimization", AISTATS 2016, https://arxiv.org/abs/1502.07943; the inner loop of
Hyperband, Li et al., JMLR 2018, https://arxiv.org/abs/1603.06560) trains every candidate a
little, keeps the best 1/η, trains those longer, and so on until one is left or the maximum
resource is reached. The resource here is epochs:

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
does not make every evaluation expensive; the winner's reported valid score is then measured once
more on the whole split.
When the deadline passes, training stops between two iterations and the best model evaluated so
far is returned (``deadline_hit``); if none was evaluated yet, the interrupted one is evaluated
so that there is always a winner.

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
    print(result.winner, result.valid_score, result.planned_epochs == result.trained_epochs)
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors
from trails.refinement.schedule import Rung, halving_rungs, planned_epochs
from trails.refinement.precision import resolve_precision
from trails.model import build_model
from trails.refinement.trainer import (Cancelled, Trial, TrainingSettings, default_device,
                                       evaluate, iterations_per_epoch, train)
from trails.space import arch_text
from trails.task import BINARY_01, Task

# The learning-rate horizon (iterations) of candidates that a finishing phase will anneal:
# far beyond any run, so the rate stays at its initial value until then.
CONSTANT_LEARNING_RATE = 10**12
# Time kept for the final evaluation: this many times the longest evaluation measured.
FINISH_EVALUATION_MARGIN = 1.5
# Seconds a candidate that no rung has trained yet is timed for before its finishing phase.
SPEED_PROBE_S = 0.3

__all__ = ["Advance", "Cancelled", "HalvingContext", "HalvingResult", "LocalExecutor", "Progress",
           "RungResult", "advance_trial", "candidate_seed", "finish_trial", "successive_halving"]


@dataclass
class RungResult:
    """One candidate evaluated at the end of its share of one rung.

    Attributes:
        arch: the candidate's hidden widths.
        rung: rung number, 0 first.
        total_epochs: complete epochs the model had trained when evaluated (the rung's
            ``total_epochs`` unless ``interrupted``).
        valid_score: the task's metric on the decision sample of the valid split (the whole split when it
            holds at most ``decision_valid_rows`` rows).
        seconds: wall time of this rung's training and evaluation of this candidate.
        train_losses: mean training loss of each epoch trained in this rung.
        interrupted: the deadline stopped its training before the rung's epochs were done.
        final: the finishing phase's evaluation (the winner trained on to the deadline).
    """

    arch: tuple
    rung: int
    total_epochs: int
    valid_score: float
    seconds: float
    train_losses: list = field(default_factory=list)
    interrupted: bool = False
    final: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["arch"] = arch_text(self.arch)
        data["valid_score"] = _finite_or_none(self.valid_score)
        return data


@dataclass
class HalvingResult:
    """What :func:`successive_halving` returns.

    Attributes:
        rungs: every evaluation, in the order they happened.
        schedule: the planned rungs (:func:`~trails.refinement.schedule.halving_rungs`).
        winner: the arch with the best valid score; ``winner_epochs`` the epochs it had trained then.
        valid_score: its valid score on ``valid_rows`` rows: the whole valid split, or the decision
            sample when the deadline was hit before the winner could be re-evaluated.
        decision_score: its valid score on the decision sample (what chose it; = ``valid_score`` when
            the sample is the whole split); ``decision_rows``: the sample's rows.
        state_dict: its weights (CPU tensors) as they were when evaluated; rebuild the model
            with :meth:`model`.
        planned_epochs: epochs the schedule plans; ``trained_epochs``: complete epochs trained
            (equal unless the deadline was hit).
        deadline_hit: the deadline stopped the run early.
        seconds: wall time of the whole run.
        n_ids, n_fields, settings, seed, device: what is needed to rebuild and reproduce it.
    """

    rungs: list
    schedule: list
    winner: tuple
    winner_epochs: int
    valid_score: float
    state_dict: dict
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

    def model(self, device="cpu") -> torch.nn.Module:
        """The winner as a :class:`~trails.model.TabularMLP` in eval mode."""
        return build_model(self.winner, self.n_ids, self.n_fields, self.settings.embedding_dim,
                           self.settings.batch_norm, state=self.state_dict, device=device,
                           n_outputs=self.task.n_outputs)

    def to_json(self) -> dict:
        """Everything but the weights, JSON-ready (archs as ``"8-16-32"`` text)."""
        return {
            "winner": arch_text(self.winner), "winner_epochs": self.winner_epochs,
            "valid_score": _finite_or_none(self.valid_score), "metric": self.task.metric,
            "deadline_hit": self.deadline_hit,
            "planned_epochs": self.planned_epochs, "trained_epochs": self.trained_epochs,
            "finish_epochs": self.finish_epochs, "valid_rows": self.valid_rows,
            "decision_score": _finite_or_none(self.decision_score), "decision_rows": self.decision_rows,
            "training_dtype": str(resolve_precision(self.settings.precision, self.device) or torch.float32),
            "seconds": self.seconds, "n_ids": self.n_ids, "n_fields": self.n_fields,
            "embedding_dim": self.settings.embedding_dim, "batch_norm": self.settings.batch_norm,
            "settings": asdict(self.settings), "seed": self.seed, "device": self.device,
            "schedule": [rung._asdict() for rung in self.schedule],
            "rungs": [rung.to_json() for rung in self.rungs],
        }


@dataclass
class Progress:
    """A progress report: ``fraction`` of the planned epochs done (0..1), a one-line
    ``message``, the ``rung`` number, and ``result`` when a candidate was just evaluated."""

    fraction: float
    message: str
    rung: int
    result: RungResult | None = None


def _finite_or_none(value):
    """A score for JSON: NaN (a diverged model's) becomes null."""
    return None if value is None or value != value else value


def candidate_seed(seed: int, arch: Sequence[int]) -> int:
    """The seed of one candidate: depends on the run's seed and the arch only, so a candidate's
    initial weights do not depend on its position among the others."""
    return zlib.crc32(f"{int(seed)}:{arch_text(arch)}".encode()) & 0x7FFFFFFF


def successive_halving(
    candidates: Sequence[Sequence[int]],
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
    executor=None,
) -> HalvingResult:
    """Successive halving over ``candidates`` (see the module docstring).

    Args:
        candidates: the K archs, best-scored first (ties in valid score keep this order).
        train_data, valid_data: the splits (moved to ``device`` when elsewhere).
        n_ids, n_fields: the layout's embedding-table size and fields per row.
        u: the minimum resource r: epochs of every model in the first rung (U), ≥ 1.
        eta: the reduction factor η: each rung keeps the best ⌊1/η⌋, ≥ 2.
        max_epochs: the maximum resource R: no model trains more epochs, ≥ u.
        settings: :class:`~trails.refinement.trainer.TrainingSettings`; ``[refinement]`` of
            ``config.ini`` when None.
        seed: run seed; candidate seeds come from :func:`candidate_seed`. On the CPU the same
            seed and data give the same result.
        device: ``"cuda"``/``"cpu"``; CUDA when available when None.
        deadline: a ``time.monotonic()`` value; the run stops cleanly when it passes.
        should_stop: checked before every iteration (keep it cheap); true cancels the run.
        progress: called with a :class:`Progress` after every epoch and every evaluation (with a
            Ray executor: after every evaluation only).
        finish: with a ``deadline``, train the best candidate on after the last rung until the
            deadline (see :func:`finish_trial`): the candidates train at a constant learning rate
            during the rungs, and the winner's cosine decay spans exactly the epochs it gets
            before the deadline, so the returned model is annealed and no time is left idle.
        task: what the candidates predict (output width, loss) and the metric every decision
            uses (:meth:`Task.better` handles lower-is-better metrics); binary 0/1 with ROC-AUC
            by default.
        executor: where the candidates train: :class:`LocalExecutor` (this process, one after
            the other) when None, or a :class:`~trails.refinement.ray_executor.RayExecutor`
            (a rung's candidates spread over Ray workers). Rungs, promotion, the winner and the
            whole-split evaluation are decided here either way.

    Returns:
        :class:`HalvingResult`.

    Raises:
        Cancelled: when ``should_stop()`` returned true.
        TrailsError: for an argument out of its range, e.g. "the reduction factor eta is 1, but
            must be eta >= 2", or a valid split with a single class.
    """
    started = time.monotonic()
    archs = _validate_candidates(candidates)
    finishing = finish and deadline is not None
    schedule = halving_rungs(len(archs), u, eta, max_epochs, finishing)
    settings = settings if settings is not None else TrainingSettings.from_config()
    settings.validate()
    device = torch.device(device) if device is not None else default_device()
    train_data, valid_data = train_data.to(device), valid_data.to(device)
    if len(train_data) == 0 or len(valid_data) == 0:
        raise TrailsError(f"successive halving needs rows in both splits, got {len(train_data)} train "
                          f"and {len(valid_data)} valid rows")
    decision_data = valid_data.stratified_sample(settings.decision_valid_rows, seed)
    planned = planned_epochs(len(archs), u, eta, max_epochs, finishing)
    # The cosine horizon: the most epochs any candidate may train is the last rung's total;
    # when finishing, the winner's horizon is set once its final epochs are known (constant
    # learning rate until then).
    per_epoch = iterations_per_epoch(len(train_data), settings.batch_size, settings.iter_per_epoch)
    max_iterations = CONSTANT_LEARNING_RATE if finishing else schedule[-1].total_epochs * per_epoch

    run = _Run(schedule, planned, progress, task)
    final_rows = len(valid_data) if decision_data is not valid_data else 0
    context = HalvingContext(train_data, decision_data, int(n_ids), int(n_fields), settings, int(seed),
                             device, task, max_iterations, deadline, should_stop, final_rows)
    executor = executor if executor is not None else LocalExecutor()
    try:
        executor.prepare(context)
        _run_rungs(archs, schedule, finishing, executor, context, run)
    finally:
        executor.release(context)
    best = run.best
    valid_score, valid_rows = best.valid_score, len(decision_data)
    # the decisions saw a sample: the winner's figure comes from the whole split — unless the
    # deadline has passed (no time was kept for it then: the sample's figure stands)
    if final_rows and not run.deadline_hit:
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            winner = build_model(best.arch, n_ids, n_fields, settings.embedding_dim, settings.batch_norm,
                                 state=run.best_state, device=device, n_outputs=task.n_outputs)
        valid_score, valid_rows = evaluate(winner, valid_data, task, settings.eval_batch_size), len(valid_data)
        run.report(f"winner {arch_text(best.arch)}: valid {task.metric} {valid_score:.4f} on the whole valid split "
                   f"({len(valid_data)} rows; {best.valid_score:.4f} on the {len(decision_data)}-row sample)",
                   len(schedule))
    return HalvingResult(
        rungs=run.results, schedule=schedule, winner=best.arch, winner_epochs=best.total_epochs,
        valid_score=valid_score, valid_rows=valid_rows, decision_score=best.valid_score,
        decision_rows=len(decision_data),
        state_dict=run.best_state, planned_epochs=planned,
        trained_epochs=run.trained_epochs, deadline_hit=run.deadline_hit,
        seconds=time.monotonic() - started, n_ids=int(n_ids), n_fields=int(n_fields),
        settings=settings, seed=int(seed), device=executor.device_name(device), finish_epochs=run.finish_epochs, task=task)


class _Run:
    """Book-keeping of one run: results, the best evaluation's weights, epochs, progress."""

    def __init__(self, schedule: list[Rung], planned: int, progress, task: Task):
        self.schedule = schedule
        self.task = task
        self.planned = planned
        self.progress = progress
        self.results: list[RungResult] = []
        self.best: RungResult | None = None
        self.best_state: dict | None = None
        self.best_trial: Trial | None = None
        self.trained_epochs = 0
        self.deadline_hit = False
        self.evaluation_s = 0.0  # the longest evaluation of the decision sample so far
        self.finish_epochs = 0

    def report(self, message: str, rung: int, result: RungResult | None = None) -> None:
        if self.progress is not None:
            fraction = min(1.0, self.trained_epochs / self.planned) if self.planned else 0.0
            self.progress(Progress(fraction, message, rung, result))

    def record(self, result: RungResult, trial) -> None:
        """Keep ``result``; ``trial`` (a :class:`Trial`, or an executor's handle with ``arch`` and
        ``state_dict_cpu()``) becomes the best when it beats every earlier evaluation."""
        self.results.append(result)
        if self.best is None or self.task.better(result.valid_score, self.best.valid_score):
            self.best, self.best_state, self.best_trial = result, trial.state_dict_cpu(), trial

    def record_step(self, trial, rung_index: int, step: Advance, final: bool = False) -> RungResult:
        """Record the evaluation that ended ``step`` of ``trial`` (rung ``rung_index``; the
        finishing phase when ``final``) and report it."""
        self.evaluation_s = max(self.evaluation_s, step.evaluation_s)
        result = RungResult(trial.arch, rung_index, trial.epochs_trained, step.valid_score, step.seconds,
                            step.losses, step.interrupted, final=final)
        self.record(result, trial)
        name, metric = arch_text(trial.arch), self.task.metric
        if final:
            message = f"finished {name}: valid {metric} {result.valid_score:.4f} after {result.total_epochs} epochs"
        else:
            message = (f"rung {rung_index + 1}/{len(self.schedule)}: {name} valid {metric} "
                       f"{result.valid_score:.4f} after {result.total_epochs} epochs")
        self.report(message, len(self.schedule) if final else rung_index, result)
        return result


def _validate_candidates(candidates) -> list[tuple]:
    archs = []
    for arch in candidates if candidates is not None else ():
        try:
            widths = tuple(int(width) for width in arch)
        except (TypeError, ValueError):
            raise TrailsError(f"the candidate {arch!r} is not a sequence of widths, e.g. (8, 16, 32)") from None
        if not widths or min(widths) < 1:
            raise TrailsError(f"the candidate {arch!r} has no hidden layer or a width < 1, but every "
                              "width must be >= 1")
        archs.append(widths)
    if not archs:
        raise TrailsError("the number of candidates K is 0, but must be K >= 1")
    return archs


def _should_stop(should_stop) -> bool:
    return should_stop is not None and bool(should_stop())


def _deadline_passed(deadline) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@dataclass
class HalvingContext:
    """What every candidate of one run is trained and evaluated with (built once by
    :func:`successive_halving`, handed to the executor).

    Attributes:
        train_data: the train split; ``decision_data`` the valid rows every rung decision is
            taken on (a stratified sample of at most ``settings.decision_valid_rows`` rows).
        n_ids, n_fields, settings, seed, device, task: as :func:`successive_halving` got them.
        max_iterations: every candidate's cosine horizon (``CONSTANT_LEARNING_RATE`` when a
            finishing phase anneals the winner).
        deadline: a ``time.monotonic()`` value of this process, or None.
        should_stop: the cancel check, or None.
        final_rows: rows of the whole valid split when the winner is evaluated on it afterwards
            (0 when the decision sample is the whole split).
    """

    train_data: SplitTensors
    decision_data: SplitTensors
    n_ids: int
    n_fields: int
    settings: TrainingSettings
    seed: int
    device: torch.device
    task: Task
    max_iterations: int
    deadline: float | None
    should_stop: Callable[[], bool] | None
    final_rows: int = 0

    def new_trial(self, arch: tuple) -> Trial:
        """A fresh trial of ``arch``, seeded by :func:`candidate_seed`."""
        return Trial(arch, self.n_ids, self.n_fields, self.max_iterations, self.settings,
                     candidate_seed(self.seed, arch), self.device, self.task)


@dataclass
class Advance:
    """What one step of a trial did (:func:`advance_trial`, :func:`finish_trial`).

    Attributes:
        losses: mean loss of each epoch completed in the step.
        interrupted: the deadline stopped it before its epochs were done.
        valid_score: the metric on the decision sample, or None when it was not evaluated.
        evaluation_s: seconds that evaluation took (0 when none).
        seconds: wall time of the whole step.
    """

    losses: list
    interrupted: bool
    valid_score: float | None
    evaluation_s: float
    seconds: float


def advance_trial(trial: Trial, total_epochs: int, context: HalvingContext, deadline=None,
                  evaluate_interrupted: bool = True, on_epoch=None) -> Advance:
    """Train ``trial`` up to ``total_epochs`` epochs and evaluate it on the decision sample;
    when ``deadline`` (``time.monotonic()``) stops it first, it is evaluated only if
    ``evaluate_interrupted``. Runs wherever the trial lives (this process, or a Ray worker).

    Raises:
        Cancelled: when ``context.should_stop()`` returned true.
    """
    started = time.monotonic()
    settings = context.settings
    epochs = total_epochs - trial.epochs_trained
    losses = train(trial, context.train_data, epochs, settings.batch_size, settings.iter_per_epoch,
                   deadline=deadline, should_stop=context.should_stop, on_epoch=on_epoch)
    interrupted = len(losses) < epochs
    score, evaluation_s = None, 0.0
    if not interrupted or evaluate_interrupted:
        score, evaluation_s = timed_evaluation(trial, context)
    return Advance(losses, interrupted, score, evaluation_s, time.monotonic() - started)


def timed_evaluation(trial: Trial, context: HalvingContext) -> tuple[float, float]:
    """(valid score on the decision sample, seconds it took) of ``trial``'s model."""
    started = time.monotonic()
    score = evaluate(trial.model, context.decision_data, trial.task, context.settings.eval_batch_size)
    return score, time.monotonic() - started


def _evaluation_estimate(seconds_per_iteration: float, batch_size: int, rows: int) -> float:
    """Seconds to evaluate ``rows`` rows, estimated from the training speed: a forward pass
    over a row costs about a third of a training step over it."""
    return seconds_per_iteration / 3 * rows / batch_size


def finish_trial(trial: Trial, context: HalvingContext, deadline: float, evaluation_s: float,
                 on_epoch=None) -> Advance | None:
    """The finishing phase of one trial: it trains on until ``deadline`` (``time.monotonic()``).

    Its iterations are those that fit before the deadline at its own measured speed, keeping
    the evaluations (with a margin: ``evaluation_s`` is the longest evaluation of the decision
    sample so far, and the whole valid split follows when ``context.final_rows``) for the end;
    its learning rate decays by a cosine from where it is to 0 over exactly those iterations
    (:meth:`Trial.anneal`; the last epoch may be cut short by the deadline, at a rate near 0).
    The model is then evaluated. None when not one iteration fits (the timing probe of a fresh
    candidate may have trained it a little; it is not evaluated then).
    """
    settings, train_data, valid_data = context.settings, context.train_data, context.decision_data
    per_epoch = iterations_per_epoch(len(train_data), settings.batch_size, settings.iter_per_epoch)
    seconds_per_iteration = trial.seconds_per_iteration
    # a fresh candidate, or one timed while the train split is still being read (the reader
    # competes for the CPU): time a few iterations now
    if not seconds_per_iteration or (getattr(train_data, "streamed", False) and not train_data.done):
        seconds_before, iterations_before = trial.train_seconds, trial.iterations
        train(trial, train_data, 1, settings.batch_size, settings.iter_per_epoch,
              deadline=min(deadline, time.monotonic() + SPEED_PROBE_S), should_stop=context.should_stop,
              on_epoch=on_epoch)
        if trial.iterations == iterations_before:
            return None
        seconds_per_iteration = (trial.train_seconds - seconds_before) / (trial.iterations - iterations_before)
    sample_s = max(evaluation_s, _evaluation_estimate(seconds_per_iteration, settings.batch_size, len(valid_data)))
    keep_s = FINISH_EVALUATION_MARGIN * (sample_s + sample_s * context.final_rows / len(valid_data))
    iterations = int((deadline - time.monotonic() - keep_s) / seconds_per_iteration)
    if iterations < 1:
        return None
    epochs = -(-iterations // per_epoch)  # the last one may be cut by the deadline
    started = time.monotonic()
    trial.anneal(iterations)
    losses = train(trial, train_data, epochs, settings.batch_size, settings.iter_per_epoch,
                   deadline=deadline - keep_s, should_stop=context.should_stop, on_epoch=on_epoch)
    score, seconds = timed_evaluation(trial, context)
    return Advance(losses, False, score, seconds, time.monotonic() - started)


def _run_rungs(archs: list[tuple], schedule: list[Rung], finishing: bool, executor, context: HalvingContext,
               run: _Run) -> None:
    """The rungs, promotion between them and the finishing phase; ``run`` holds the outcome
    (at least one evaluation once it returns)."""
    if not schedule:  # finishing with one candidate: nothing to choose, it trains to the deadline
        run.best_trial = executor.fresh(archs[0], context)
    survivors: list = list(archs)  # an arch tuple until the candidate is first trained
    for rung_index, rung in enumerate(schedule):
        evaluated = executor.train_rung(survivors, rung_index, rung, context, run)
        if run.deadline_hit or rung_index == len(schedule) - 1:
            break
        survivors = _promote(evaluated, schedule[rung_index + 1].n_models, context.task)
    if finishing and not run.deadline_hit:
        executor.finish(run.best_trial, context, run)
    if run.best is None:  # the deadline left no time to train: the untrained candidate
        run.deadline_hit = True
        executor.evaluate_as_is(run.best_trial, context, run)


class LocalExecutor:
    """Trains the candidates one after the other in this process, on ``context.device`` (the
    default executor; :class:`trails.refinement.ray_executor.RayExecutor` spreads a rung over
    Ray workers). An executor's handle of a candidate is here the :class:`Trial` itself."""

    name = "local"

    def prepare(self, context: HalvingContext) -> None:
        """Nothing to ship: the data is already on the device."""

    def release(self, context: HalvingContext) -> None:
        """Nothing to free."""

    def fresh(self, arch: tuple, context: HalvingContext) -> Trial:
        return context.new_trial(arch)

    def device_name(self, device: torch.device) -> str:
        """The device the candidates trained on."""
        return str(device)

    def train_rung(self, survivors: list, rung_index: int, rung: Rung, context: HalvingContext,
                   run: _Run) -> list[tuple[float, int, Trial]]:
        """Train each survivor to the rung's epochs and evaluate it, in order; returns
        ``(valid score, position, trial)`` of those evaluated. Stops between candidates once the
        deadline has passed and some model was evaluated (``run.deadline_hit``)."""
        evaluated: list[tuple[float, int, Trial]] = []
        for position, entry in enumerate(survivors):
            if _should_stop(context.should_stop):
                raise Cancelled("successive halving was cancelled")
            if _deadline_passed(context.deadline) and run.best is not None:
                run.deadline_hit = True
                break
            trial = entry if isinstance(entry, Trial) else context.new_trial(entry)
            result = self._train_and_evaluate(trial, rung_index, rung, context, run)
            if result is not None:
                evaluated.append((result.valid_score, position, trial))
            if run.deadline_hit:
                break
        return evaluated

    @staticmethod
    def _train_and_evaluate(trial: Trial, rung_index: int, rung: Rung, context: HalvingContext,
                            run: _Run) -> RungResult | None:
        """Train ``trial`` up to the rung's total epochs and evaluate it; None when the deadline
        stopped it and a better-than-nothing model was already evaluated."""
        n_rungs, name = len(run.schedule), arch_text(trial.arch)

        def on_epoch(trial: Trial, loss: float) -> None:
            run.trained_epochs += 1
            run.report(f"rung {rung_index + 1}/{n_rungs}: {name} epoch {trial.epochs_trained}/"
                       f"{rung.total_epochs} loss {loss:.4f}", rung_index)

        step = advance_trial(trial, rung.total_epochs, context, context.deadline,
                             evaluate_interrupted=run.best is None, on_epoch=on_epoch)
        if step.interrupted:
            run.deadline_hit = True
        if step.valid_score is None:
            return None
        return run.record_step(trial, rung_index, step)

    def finish(self, trial: Trial, context: HalvingContext, run: _Run) -> None:
        """The finishing phase (:func:`finish_trial`) of the best candidate, here."""
        name = arch_text(trial.arch)

        def on_epoch(trial: Trial, loss: float) -> None:
            run.trained_epochs += 1
            run.report(f"finishing {name}: epoch {trial.epochs_trained} loss {loss:.4f}", len(run.schedule))

        step = finish_trial(trial, context, context.deadline, run.evaluation_s, on_epoch)
        if step is not None:
            run.finish_epochs = len(step.losses)
            run.record_step(trial, len(run.schedule), step, final=True)

    def evaluate_as_is(self, trial: Trial, context: HalvingContext, run: _Run) -> None:
        """Evaluate ``trial`` without training it further (and record it)."""
        score, seconds = timed_evaluation(trial, context)
        run.record_step(trial, 0, Advance([], True, score, seconds, 0.0))


def _promote(evaluated: list[tuple[float, int, Trial]], n_next: int, task: Task) -> list[Trial]:
    """The best ``n_next`` trials by the task's metric; ties keep the candidates' order."""
    ranked = sorted(evaluated, key=lambda item: (task.sort_key(item[0]), item[1]))
    return [trial for _, _, trial in ranked[:n_next]]
