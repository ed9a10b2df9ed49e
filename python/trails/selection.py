"""``model_selection``: the whole two-phase call, budget in hand.

    resolve the dataset once (a DatasetContext: tables, layout, split rows, scoring batch)
    → load train/valid (in-backend path) → profile t1, t2 → coordinator → filtering
    → refinement (service, or successive halving in the backend) → test score of the winner
    → store run + model → one row

The task (binary, multiclass, regression) is resolved with the layout and its metric chosen
once (:mod:`trails.task`); every phase takes it from there. ``max_params`` removes the archs
whose MLP is larger from filtering (they are never scored); ``max_trials`` caps the
candidates refined, and without a budget (``budget_s`` NULL) exactly ``max_trials``
candidates go through successive halving to ``max_epochs``, with no deadline.

Every phase takes the context; none resolves the dataset name again.

Every phase's seconds are measured and stored in ``trails.runs.phases``. The budget is
kept by construction: the coordinator plans only what remains after what was already
spent and what must still happen (evaluating on test, storing), and the refinement gets a
hard deadline.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from dataclasses import dataclass, field
from typing import Callable

from trails.config import load_config
from trails.context import DatasetContext, resolve_context
from trails.coordinator import Plan, schedule
from trails.cost_model import CostModel, arch_macs
from trails.data.session import Session
from trails.errors import TrailsError, is_positive_number, sql_text
from trails.filtering import filter_archs, profile_scoring, require_seed
from trails.refinement.schedule import halving_rungs
from trails.space import arch_text, parse_arch
from trails.task import Task, check_metric_argument, check_task_argument
from trails.tfmem import get_metric, metric_names

REFINEMENT_MODES = ("auto", "service", "backend")
# seconds kept back, beyond the measured test-split cost, for storing the run and model
STORE_RESERVE_S = 0.5
# train+valid rows per second the service is assumed to read and decode (psycopg2 path)
SERVICE_READ_ROWS_PER_S = 150_000
# train rows the training cost (t2) is measured on
PROFILE_ROWS = 4096
# Share of the time left after reading and profiling that the winner's finishing phase gets:
# the coordinator plans filtering and successive halving in the rest, and the winner then
# trains on to the deadline with its learning rate annealed over the epochs that fit.
FINISH_SHARE = 0.5
# Candidates are chosen among the archs the finishing phase can train this many epochs: on a
# CPU the widest archs, which the flow TFMEMs rank first, cost several times a narrow one
# per epoch, and an arch stopped after an epoch or two loses to a cheaper one trained on.
# 15 rather than 5: frappe, 40 s, 1 thread, seeds 0 and 1: test AUC 0.9766 / 0.9774 against
# 0.9751 / 0.9753 (narrower archs, 3x the epochs); 60 s, 2 threads: 0.9762 against 0.9717.
MIN_FINAL_EPOCHS = 15
# When the budget is too short for that, archs costing up to this many times the cheapest one
# stay candidates: per-iteration overhead dominates narrow archs, so they cost about the same.
CHEAPEST_SLACK = 1.5
# With refinement => 'auto', a job still queued on the service (behind other callers' jobs)
# after this many seconds, or this share of the time left, is given up: the backend trains.
QUEUE_PATIENCE_S = 5.0
QUEUE_PATIENCE_SHARE = 0.2
# When not even two candidates fit (filtering only), scoring gets at most this share.
FILTERING_ONLY_SHARE = 0.1
# A vectorised TFMEM scores a whole space of up to this many archs in about a second (frappe's
# 160,000 in 0.5 s): cheaper than any sample of it, so the whole space is scored.
WHOLE_SPACE_MAX_ARCHS = 200_000


@dataclass
class Clock:
    """Seconds since the call started, and a named record of each phase."""

    started: float = field(default_factory=time.monotonic)
    started_at: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))
    phases: dict = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def record(self, name: str, since: float) -> float:
        seconds = time.monotonic() - since
        self.phases[name] = round(seconds, 4)
        return seconds


def validate_selection_arguments(dataset, budget_s, label, tfmem, refinement, seed=0, task="auto",
                                 metric=None, max_params=None, max_trials=None) -> None:
    """Raise :class:`TrailsError` for any invalid argument, before any work is done.
    ``budget_s`` may be NULL when ``max_trials`` is given (a budget in trials)."""
    if budget_s is None and max_trials is None:
        raise TrailsError("budget_s and max_trials are both NULL: nothing bounds the selection",
                          hint="give a time budget, e.g. model_selection('frappe', 60), or a number of "
                               "candidates to refine, e.g. max_trials => 9")
    if budget_s is not None and not is_positive_number(budget_s):
        raise TrailsError(f"budget_s must be a positive, finite number of seconds, got {sql_text(budget_s)}",
                          hint="e.g. model_selection('frappe', 60)")
    for name, value in (("max_params", max_params), ("max_trials", max_trials)):
        if value is not None and value < 1:
            raise TrailsError(f"{name} must be a positive integer or NULL, got {sql_text(value)}",
                              hint="e.g. max_params => 20000, max_trials => 9")
    check_task_argument(task)
    check_metric_argument(metric, task)
    if tfmem not in metric_names():
        raise TrailsError(f"unknown TFMEM {sql_text(tfmem)}", hint="valid: " + ", ".join(metric_names()))
    if refinement not in REFINEMENT_MODES:
        raise TrailsError(f"unknown refinement mode {sql_text(refinement)}",
                          hint="valid: auto (the service when it answers, else in the backend), "
                               "service, backend")
    if not label:
        raise TrailsError("label must name a column", hint="e.g. label => 'label'")
    require_seed(seed)


def estimate_plan(budget_s: float, spent_s: float, t1: float, t2: float, reserve_s: float) -> tuple[Plan, float]:
    """The coordinator's plan for what is left of ``budget_s`` after ``spent_s`` seconds
    spent and ``reserve_s`` kept for after the refinement; raises when nothing is left."""
    config = load_config()
    available = budget_s - spent_s - reserve_s
    if available <= t1 * 10:
        raise TrailsError(
            f"a budget of {budget_s:g} s is too small for this dataset",
            detail=f"{spent_s:.1f} s went to reading and profiling and {reserve_s:.1f} s are needed "
                   f"to evaluate and store the model, leaving {available:.1f} s",
            hint=f"give at least {spent_s + reserve_s + 2:.0f} s")
    halving_s = available * (1 - FINISH_SHARE)
    plan = schedule(halving_s, t1, t2, eta=config.getint("coordinator", "eta"),
                    ratio=config.getint("coordinator", "ratio"),
                    max_epochs=config.getint("coordinator", "max_epochs"), finish=True)
    if plan.filtering_only:
        # Not even K = 2 fits. TRAILS would score N = T/t1 archs and return the top one
        # untrained; here the top one is the single candidate the finishing phase trains,
        # so scoring keeps to a tenth of the time and one epoch's time is kept for it.
        n = max(10, int(max(0.0, min(halving_s - t2, FILTERING_ONLY_SHARE * available)) / t1))
        if n < plan.n:
            plan = dataclasses.replace(plan, n=n, filtering_s=n * t1)
    return plan, available


NoticeFn = Callable[[str], None]


def measure_t1_t2(context: DatasetContext, tfmem: str, sample, settings,
                  seed: int = 0, allowed=None) -> tuple[float, float, CostModel]:
    """t1 with ``tfmem`` on the context's space; t2 for the arch the TFMEM ranks first among a
    quick random probe of the space (about half a second of scoring), the kind of arch the
    refinement would train without a cost model; and the :class:`CostModel` fitted on that
    arch and the space's narrowest one. Measured on ``sample``, a few thousand train rows;
    ``allowed`` (see :func:`filter_archs`) keeps the probe within ``max_params``."""
    from trails.profiling import measure_training
    from trails.refinement.trainer import iterations_per_epoch

    t1 = profile_scoring(context.space, context.scoring, tfmem,
                         archs=500 if get_metric(tfmem).data_agnostic else 5, seed=seed)
    probe_n = int(min(500, max(10, 0.5 / t1)))
    probe = filter_archs(context.space, context.scoring, probe_n, tfmem, "random", seed=seed + 1,
                         allowed=allowed)
    layout, rows = context.layout, context.rows
    per_epoch = iterations_per_epoch(rows["train"], settings.batch_size, settings.iter_per_epoch)
    timings, t2 = [], None
    narrowest = (min(context.space.widths),) * context.space.layers
    for arch in (probe.ranked[0][0] if probe.ranked else narrowest, narrowest):
        epoch_s, evaluation_s = measure_training(arch, sample, layout.n_ids, layout.n_fields,
                                                 rows["train"], decision_rows(rows, settings), settings,
                                                 task=layout.task)
        timings.append((arch, epoch_s / per_epoch))
        t2 = epoch_s + evaluation_s if t2 is None else t2
    cost = CostModel.fit(timings, context.scoring.in_features, per_epoch)
    return t1, t2, cost


def decision_rows(rows: dict, settings) -> int:
    """Valid rows a rung decision evaluates: the valid split, capped at
    ``settings.decision_valid_rows`` (successive halving decides on a stratified sample)."""
    return min(int(rows["valid"]), int(settings.decision_valid_rows))


def affordable_candidates(ranked: list, cost: CostModel, k: int, finish_s: float) -> tuple[list, float]:
    """The ``k`` best-scored archs of ``ranked`` among those the finishing phase can train
    ``MIN_FINAL_EPOCHS`` epochs in ``finish_s`` seconds — or, when too few can, among those
    within ``CHEAPEST_SLACK`` of the cheapest arch's cost — and that cap in seconds per epoch."""
    import numpy as np

    archs = np.array([arch for arch, _ in ranked], dtype=np.int64)
    epoch_s = cost.epoch_seconds(archs)
    cap = epoch_cap(finish_s, float(epoch_s.min()))
    chosen = np.flatnonzero(epoch_s <= cap)[:max(1, k)]
    return [ranked[i][0] for i in chosen], cap


def epoch_cap(finish_s: float, cheapest_epoch_s: float) -> float:
    """The most seconds per epoch a candidate may cost: ``MIN_FINAL_EPOCHS`` of it fit in
    ``finish_s``, the finishing phase's share — or, when even the cheapest arch
    (``cheapest_epoch_s``) does not fit, ``CHEAPEST_SLACK`` times the cheapest."""
    return max(finish_s / MIN_FINAL_EPOCHS, CHEAPEST_SLACK * cheapest_epoch_s)


def plan_model_selection(session: Session, dataset: str, budget_s: float, label: str = "label",
                         tfmem: str = "express_flow", task: str = "auto") -> dict:
    """What ``model_selection`` would do now, without doing it: t1, t2, N, K, U, the rungs, the
    planned seconds per phase (data read counted as the service would read it), the finishing
    phase's seconds, the cost cap on candidates (seconds per epoch) and the cost model (as
    JSON, with the epoch seconds of the space's narrowest and widest archs)."""
    import numpy as np

    from trails.refinement.data import load_split
    from trails.refinement.trainer import TrainingSettings

    if budget_s is None:
        raise TrailsError("budget_s must not be NULL", hint="e.g. model_selection_plan('frappe', 60)")
    validate_selection_arguments(dataset, budget_s, label, tfmem, "auto", task=task)
    clock = Clock()
    context = resolve_context(session, dataset, label, tfmem, task=task)
    rows = context.rows
    sample = load_split(session, context.dataset, context.layout, "train", limit=PROFILE_ROWS,
                        ordered=False)
    settings = TrainingSettings.from_config()
    t1, t2, cost = measure_t1_t2(context, tfmem, sample, settings)
    load_s = (rows["train"] + rows["valid"]) / SERVICE_READ_ROWS_PER_S
    reserve = STORE_RESERVE_S + 2 * rows["test"] / SERVICE_READ_ROWS_PER_S
    spent = clock.elapsed()
    plan, available = estimate_plan(budget_s, spent + load_s, t1, t2, reserve)
    space = context.space
    extremes = np.array([(min(space.widths),) * space.layers, (max(space.widths),) * space.layers])
    narrowest_s, widest_s = (float(x) for x in cost.epoch_seconds(extremes))
    finish_s = FINISH_SHARE * available
    cost_json = dict(cost.to_json(), epoch_s={arch_text(extremes[0]): narrowest_s,
                                              arch_text(extremes[1]): widest_s},
                     decision_valid_rows=decision_rows(rows, settings))
    return {"t1": t1, "t2": t2, "n": plan.n, "k": plan.k, "u": plan.u,
            "rungs": [r._asdict() for r in plan.rungs], "profile_s": spent, "load_s": load_s,
            "filtering_s": plan.filtering_s, "refinement_s": plan.refinement_s,
            "finish_s": finish_s, "epoch_cap_s": epoch_cap(finish_s, narrowest_s), "cost_model": cost_json,
            "test_and_store_s": reserve, "total_s": spent + load_s + plan.total_s + finish_s + reserve}


def scores_whole_space(tfmem: str, space) -> bool:
    """Whether filtering scores every arch of ``space``: a vectorised TFMEM and a space of at
    most ``WHOLE_SPACE_MAX_ARCHS`` archs."""
    from trails.tfmem.base import SharedWeightTfmem

    return isinstance(get_metric(tfmem), SharedWeightTfmem) and space.size <= WHOLE_SPACE_MAX_ARCHS


def refinement_seconds(k: int, u: int, epoch_s: float, evaluation_s: float) -> float:
    """Seconds successive halving over ``k`` models with first rung ``u`` costs: every rung's
    models train its epochs and are evaluated once."""

    config = load_config()
    return sum(r.n_models * (r.epochs_this_rung * epoch_s + evaluation_s)
               for r in halving_rungs(k, u, config.getint("coordinator", "eta"),
                                      config.getint("coordinator", "max_epochs"), finish=True))


def replan_first_rung(plan: Plan, candidates: list, sample, layout, rows: dict, settings,
                      seconds_left: float, notice: NoticeFn) -> Plan:
    """With the K candidates known, measure their training cost (the largest of them) and fit
    successive halving into its share of the seconds left: the largest K' ≤ K (the best-scored
    K' candidates), then the largest U. The first plan had to guess the cost from one probe."""
    from trails.profiling import measure_training

    config = load_config()
    in_features = layout.n_fields * settings.embedding_dim
    largest = max(candidates, key=lambda arch: arch_macs(arch, in_features))
    epoch_s, evaluation_s = measure_training(largest, sample, layout.n_ids, layout.n_fields,
                                             rows["train"], decision_rows(rows, settings), settings,
                                             task=layout.task)
    seconds_left -= 0.5  # the measurement above, roughly
    halving_s = (1 - FINISH_SHARE) * seconds_left
    max_epochs = config.getint("coordinator", "max_epochs")

    def fits(k: int, u: int) -> bool:
        return refinement_seconds(k, u, epoch_s, evaluation_s) <= halving_s

    k = max([k for k in range(1, len(candidates) + 1) if fits(k, 1)], default=1)
    # one candidate: one epoch, then the finishing phase trains it on with an annealed rate
    u = max([u for u in range(1, max_epochs + 1) if fits(k, u)], default=1) if k > 1 else 1
    notice(f"re-plan: the candidates train at {epoch_s:.2f} s/epoch + {evaluation_s:.2f} s per "
           f"evaluation; {seconds_left:.1f} s left, {halving_s:.1f} s for successive halving: "
           f"K = {k}, U = {u}" + (f" (was K = {plan.k}, U = {plan.u})" if (k, u) != (plan.k, plan.u) else "")
           + "; the winner trains on to the deadline")
    rungs = tuple(halving_rungs(k, u, config.getint("coordinator", "eta"), max_epochs, finish=True))
    return dataclasses.replace(plan, k=k, u=u, rungs=rungs,
                               refinement_s=refinement_seconds(k, u, epoch_s, evaluation_s))


@dataclass
class Refined:
    """The refinement's outcome, whichever path produced it."""

    mode: str  # "service" | "backend"
    winner: tuple
    valid_score: float  # the task's metric on the valid split
    weights: bytes
    summary: dict  # HalvingResult.to_json() (rungs, epochs, deadline_hit, device, ...)


def rung_notice(rung: dict, metric: str) -> str:
    """The NOTICE for one evaluation (a :class:`~trails.refinement.halving.RungResult` as JSON)."""
    what = "final training" if rung.get("final") else f"refinement rung {rung['rung']}"
    return (f"{what}: {rung['arch']} after {rung['total_epochs']} epochs: valid {metric} "
            f"{rung['valid_score']:.4f}")


def choose_refinement(refinement: str, notice: NoticeFn):
    """The service client when it should and can be used, else None (refine in the backend)."""
    from trails.refinement.client import RefinementClient, ServiceUnavailable

    if refinement == "backend":
        return None
    client = RefinementClient.from_config()
    try:
        health = client.health()
    except ServiceUnavailable as error:
        if refinement == "service":
            raise TrailsError(f"refinement => 'service', but {error.message}",
                              hint="start it with scripts/start_refinement_service.sh --background, "
                                   "or use refinement => 'auto' to train in the database when it is absent")
        notice(f"no refinement service at {client.base_url}: refining inside the database on the CPU")
        return None
    notice(f"refinement service at {client.base_url} ({health.get('device', '?')})")
    return client


def refine_in_backend(candidates, train_data, valid_data, layout, plan: Plan, deadline: float | None,
                      seed: int, interrupt: Callable[[], None], notice: NoticeFn, task: Task,
                      max_epochs: int) -> Refined:
    from trails.model import state_to_bytes
    from trails.refinement.halving import successive_halving
    from trails.refinement.trainer import TrainingSettings

    config = load_config()
    last_check = [0.0]

    def should_stop() -> bool:  # lets pg_cancel_backend / statement_timeout in, 5 times a second
        now = time.monotonic()
        if now - last_check[0] > 0.2:
            last_check[0] = now
            interrupt()
        return False

    def progress(event) -> None:
        if event.result is not None:
            notice(rung_notice(event.result.to_json(), task.metric))

    result = successive_halving(candidates, train_data, valid_data, layout.n_ids, layout.n_fields,
                                u=max(1, plan.u), eta=config.getint("coordinator", "eta"),
                                max_epochs=max_epochs, settings=TrainingSettings.from_config(), seed=seed,
                                device="cpu", deadline=deadline, should_stop=should_stop, progress=progress,
                                finish=deadline is not None, task=task)
    return Refined("backend", tuple(result.winner), result.valid_score,
                   state_to_bytes(result.state_dict), result.to_json())


def refine_with_service(client, session: Session, context: DatasetContext, candidates, plan: Plan,
                        deadline: float | None, seed: int, sleep: Callable[[], None],
                        notice: NoticeFn, task: Task, max_epochs: int,
                        queue_patience_s: float | None = None) -> Refined:
    """Successive halving on the refinement service, reading the caller's tables and training
    with this backend's ``[refinement]`` settings (all of them travel in the job). A job still
    queued behind others after ``queue_patience_s`` counts as failed (``auto`` then trains in
    the backend while most of the budget is left).

    Raises:
        ServiceUnavailable: nothing answers at the service's address.
        ServiceFailed: the service refused the job, the job failed, the service stopped
            answering, or it ran past the deadline (the caller may then train in the backend).
    """
    from trails.data.dataset import table_identity
    from trails.refinement.jobs import JobSpec
    from trails.refinement.trainer import TrainingSettings

    layout = context.layout
    identity = table_identity(session, context.dataset)  # the caller's database, role and tables
    spec = JobSpec(dataset=context.name, label=context.label, layout_id=layout.layout_id,
                   database=identity["database"], role=identity["role"], tables=identity["tables"],
                   oids=identity["oids"], split_bounds=identity["split_bounds"],
                   layout=layout.to_json(),  # this transaction may have just created it: not visible yet
                   candidates=tuple(arch_text(arch) for arch in candidates), u=max(1, plan.u),
                   eta=load_config().getint("coordinator", "eta"), max_epochs=max_epochs,
                   deadline_s=None if deadline is None else max(0.1, deadline - time.monotonic()), seed=seed,
                   metric=task.metric, finish=deadline is not None, settings=TrainingSettings.from_config())
    outcome = client.run(
        spec, sleep=sleep, deadline=deadline, queue_patience_s=queue_patience_s,
        on_submitted=lambda job_id: notice(f"refinement job {job_id} submitted: {len(candidates)} candidates, "
                                           f"U = {spec.u}"),
        on_rung=lambda rung: notice(rung_notice(rung, task.metric)))
    return Refined("service", parse_arch(outcome.winner), outcome.valid_score, outcome.weights, outcome.summary)


def params_filter(max_params: int | None, context: DatasetContext, task: Task, settings):
    """``allowed(archs)`` for :func:`filter_archs`: archs whose MLP has at most ``max_params``
    parameters (:func:`trails.model.mlp_parameters`); None without a bound.

    Raises:
        TrailsError: when not even the space's narrowest arch fits (before any scoring).
    """
    from trails.model import mlp_parameters, mlp_parameters_of

    if max_params is None:
        return None
    in_features, n_outputs = context.scoring.in_features, task.n_outputs
    narrowest = (min(context.space.widths),) * context.space.layers
    smallest = mlp_parameters(narrowest, in_features, n_outputs, settings.batch_norm)
    if smallest > max_params:
        raise TrailsError(f"no arch of the search space has at most max_params = {max_params} parameters",
                          detail=f"the smallest, {arch_text(narrowest)}, has {smallest} (MLP weights, biases "
                                 f"and BatchNorm; its input is {context.layout.n_fields} fields × "
                                 f"{settings.embedding_dim} = {in_features} numbers)",
                          hint=f"pass max_params >= {smallest}, or NULL for no bound")
    return lambda archs: mlp_parameters_of(archs, in_features, n_outputs, settings.batch_norm) <= max_params


def require_backend_fits(context: DatasetContext) -> None:
    """Raise TrailsError when train + valid are too large for the backend to hold
    (``[refinement] max_table_mb``), before reading them."""
    from trails.refinement.data import require_fits

    rows = context.rows["train"] + context.rows["valid"]
    require_fits(context.name, rows, context.layout.n_fields,
                 load_config().getint("refinement", "max_table_mb"), "[refinement] max_table_mb")


def first_rung_for_full_epochs(k: int, eta: int, max_epochs: int) -> int:
    """U such that successive halving over ``k`` models ends with its last rung at
    ``max_epochs`` (a selection budgeted in trials trains its winner to the full epoch count)."""

    rungs = len(halving_rungs(k, 1, eta, max_epochs))
    return max(1, min(max_epochs, -(-max_epochs // eta ** (rungs - 1))))


def run_model_selection(session: Session, dataset: str, budget_s: float | None, label: str = "label",
                        tfmem: str = "express_flow", refinement: str = "auto", seed: int = 0,
                        interrupt: Callable[[], None] = lambda: None,
                        sleep: Callable[[], None] = lambda: time.sleep(0.2),
                        notice: NoticeFn = lambda message: None,
                        started: float | None = None, task: str = "auto", metric: str | None = None,
                        max_params: int | None = None, max_trials: int | None = None) -> dict:
    """The whole call (see the module docstring). Returns the row model_selection returns.

    ``started`` (a ``time.monotonic()`` value, default now) is when the budget started: the
    SQL function passes the moment it was called, so that imports count against the budget.
    ``budget_s`` None (with ``max_trials``): no deadline, exactly ``max_trials`` candidates.

    ``interrupt()`` raises when the user cancelled (in the backend: an SPI call);
    ``sleep()`` is an interruptible short wait; ``notice`` reports progress.
    """
    from trails.model import build_model, mlp_parameters
    from trails.refinement.client import ServiceFailed, ServiceUnavailable
    from trails.refinement.data import SplitTensors, load_split
    from trails.refinement.trainer import TrainingSettings, evaluate
    from trails.registry import store_run_and_model

    validate_selection_arguments(dataset, budget_s, label, tfmem, refinement, seed, task, metric,
                                 max_params, max_trials)
    clock = Clock() if started is None else Clock(
        started=started, started_at=datetime.datetime.now(datetime.timezone.utc)
        - datetime.timedelta(seconds=time.monotonic() - started))
    if started is not None:
        clock.record("import_s", started)
    settings = TrainingSettings.from_config()
    config = load_config()
    eta, max_epochs = config.getint("coordinator", "eta"), config.getint("coordinator", "max_epochs")

    since = time.monotonic()
    context = resolve_context(session, dataset, label, tfmem, task=task)
    resolved, layout, rows = context.dataset, context.layout, context.rows
    chosen = layout.task.with_metric(metric)
    if task == "auto":
        notice(f"task: {chosen.kind} ({len(chosen.classes)} classes) of label \"{label}\", metric {chosen.metric}"
               if chosen.is_classification else
               f"task: regression of label \"{label}\" (train mean {chosen.mean:.4g}, std {chosen.std:.4g}), "
               f"metric {chosen.metric}")
    allowed = params_filter(max_params, context, chosen, settings)
    usable = {split: session.query(f"SELECT count(*) AS n {resolved.source(split, condition)}")[0]["n"]
              for split in ("valid", "test")
              for condition in [chosen.label_condition(f"t.{session.quote_ident(label)}")]}
    if usable["valid"] == 0 or usable["test"] == 0:
        empty = [split for split in ("valid", "test") if usable[split] == 0]
        raise TrailsError(f"dataset \"{dataset}\" has no {' and no '.join(empty)} rows to evaluate on",
                          detail=", ".join(f"{split}: {rows[split]} rows, {usable[split]} with a label the task "
                                           "can use" for split in ("valid", "test")),
                          hint="each of train, valid and test needs rows with a (non-NULL, not left out) label")
    client = choose_refinement(refinement, notice)
    clock.record("prepare_s", since)

    since = time.monotonic()
    train_data = valid_data = None
    if client is None:  # the backend trains: read train and valid now, through SPI
        require_backend_fits(context)
        train_data = load_split(session, resolved, layout, "train", ordered=False)
        valid_data = load_split(session, resolved, layout, "valid", ordered=False)
        sample = SplitTensors(train_data.ids[:PROFILE_ROWS], train_data.values[:PROFILE_ROWS],
                              train_data.labels[:PROFILE_ROWS])
        clock.record("load_s", since)
    else:
        sample = load_split(session, resolved, layout, "train", limit=PROFILE_ROWS, ordered=False)
    interrupt()

    since = time.monotonic()
    t1, t2, cost = measure_t1_t2(context, tfmem, sample, settings, seed, allowed)
    clock.record("profile_s", since)
    read_rate = rows["train"] / max(clock.phases.get("load_s", 0.0), 1e-3) if client is None else None
    test_read_s = rows["test"] / (read_rate or SERVICE_READ_ROWS_PER_S)
    service_load_s = 0.0 if client is None else (rows["train"] + rows["valid"]) / SERVICE_READ_ROWS_PER_S
    reserve = STORE_RESERVE_S + 2 * test_read_s
    if budget_s is None:  # budgeted in trials: max_trials candidates, no deadline
        u = first_rung_for_full_epochs(max_trials, eta, max_epochs)
        n = max_trials * config.getint("coordinator", "ratio")
        plan = Plan(n, max_trials, u, n * t1, 0.0, tuple(halving_rungs(max_trials, u, eta, max_epochs)))
        available = float("inf")
        notice(f"plan: {max_trials} trials, no time budget: N = {n}, K = {max_trials}, U = {u}, rungs "
               + ", ".join(f"{r.n_models}x{r.total_epochs}ep" for r in plan.rungs))
    else:
        plan, available = estimate_plan(budget_s, clock.elapsed() + service_load_s, t1, t2, reserve)
        if max_trials is not None and plan.k > max_trials:
            plan = dataclasses.replace(plan, k=max_trials, rungs=tuple(
                halving_rungs(max_trials, plan.u, eta, max_epochs, finish=True)) if plan.u else ())
        notice(f"plan: t1 = {1e3 * t1:.3f} ms/arch, t2 = {t2:.2f} s/epoch, {available:.1f} s to plan: "
               f"N = {plan.n}, K = {plan.k}, U = {plan.u}" + (" (filtering only)" if plan.filtering_only else
               ", rungs " + ", ".join(f"{r.n_models}x{r.total_epochs}ep" for r in plan.rungs)))
    interrupt()

    since = time.monotonic()
    n, strategy = plan.n, "evolution"
    filtering_deadline = None if budget_s is None else time.monotonic() + plan.filtering_s * 1.5 + 1.0
    if scores_whole_space(tfmem, context.space):
        # about a second for frappe's 160,000; a tight budget ranks what its share allows
        n, strategy = context.space.size, "exhaustive"
        if budget_s is not None:
            filtering_deadline = time.monotonic() + max(0.1, FILTERING_ONLY_SHARE * available)
    scored = filter_archs(context.space, context.scoring, n, tfmem, strategy, seed=seed,
                          deadline=filtering_deadline, allowed=allowed,
                          report=lambda done, total, s: interrupt() or notice(
                              f"filtering: {done}/{total} archs scored ({100 * done // total}%), "
                              f"{done / max(s, 1e-9):,.0f} archs/s"))
    if scored.stopped_early:
        notice(f"filtering stopped at its deadline after {scored.n_scored} of {n} archs")
    if not scored.ranked:
        raise TrailsError(f"filtering found no arch within max_params = {max_params}",
                          hint="raise max_params, or leave it NULL")
    if budget_s is None:
        candidates = [arch for arch, _ in scored.ranked[:max_trials]]
        epoch_cap = None
        notice(f"candidates: the {len(candidates)} best-scored archs: "
               + ", ".join(arch_text(arch) for arch in candidates))
    else:
        candidates, epoch_cap = affordable_candidates(scored.ranked, cost, plan.k, FINISH_SHARE * available)
        notice(f"candidates: the {len(candidates)} best-scored archs costing at most {epoch_cap:.2f} s/epoch "
               f"({MIN_FINAL_EPOCHS} epochs in {FINISH_SHARE * available:.1f} s of final training): "
               + ", ".join(arch_text(arch) for arch in candidates))
    clock.record("filtering_s", since)
    interrupt()

    since = time.monotonic()
    deadline = None if budget_s is None else clock.started + budget_s - reserve
    if budget_s is None:
        if len(candidates) < max_trials:
            notice(f"filtering found {len(candidates)} archs within max_params = {max_params}: "
                   f"{len(candidates)} trials instead of {max_trials}")
        u = first_rung_for_full_epochs(len(candidates), eta, max_epochs)
        plan = dataclasses.replace(plan, k=len(candidates), u=u,
                                   rungs=tuple(halving_rungs(len(candidates), u, eta, max_epochs)))
        rung_epochs = max_epochs
    else:
        if plan.k > 1:
            plan = replan_first_rung(plan, candidates, sample, layout, rows, settings,
                                     deadline - time.monotonic() - service_load_s, notice)
            candidates = candidates[:plan.k]
        rung_epochs = max_epochs if plan.k > 1 else 1
    clock.record("replan_s", since)

    since = time.monotonic()
    if client is not None:
        try:
            patience = None if refinement == "service" or deadline is None else min(
                QUEUE_PATIENCE_S, QUEUE_PATIENCE_SHARE * (deadline - time.monotonic()))
            refined = refine_with_service(client, session, context, candidates, plan, deadline, seed,
                                          sleep, notice, chosen, rung_epochs, patience)
        except (ServiceUnavailable, ServiceFailed) as error:
            if refinement == "service":
                raise
            left = "" if deadline is None else f" with the {deadline - time.monotonic():.1f} s left"
            notice(f"the refinement service failed ({error.message}): refining inside the database{left}")
            client = None
            clock.phases["service_failed"] = error.message
            require_backend_fits(context)
            train_data = load_split(session, resolved, layout, "train", ordered=False)
            valid_data = load_split(session, resolved, layout, "valid", ordered=False)
    if client is None:
        refined = refine_in_backend(candidates, train_data, valid_data, layout, plan, deadline, seed,
                                    interrupt, notice, chosen, rung_epochs)
    clock.record("refinement_s", since)

    since = time.monotonic()
    test_data = load_split(session, resolved, layout, "test", ordered=False)
    params = mlp_parameters(refined.winner, context.scoring.in_features, chosen.n_outputs, settings.batch_norm)
    hyper = {"n_ids": layout.n_ids, "n_fields": layout.n_fields, "n_outputs": chosen.n_outputs,
             "embedding_dim": settings.embedding_dim, "batch_norm": settings.batch_norm,
             "epochs": refined.summary.get("winner_epochs"), "mlp_params": params,
             "learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
             "iter_per_epoch": settings.iter_per_epoch, "seed": seed}
    network = build_model(refined.winner, layout.n_ids, layout.n_fields, settings.embedding_dim,
                          settings.batch_norm, state=refined.weights, n_outputs=chosen.n_outputs)
    test_score = evaluate(network, test_data, chosen, settings.eval_batch_size)
    valid_auc = test_auc = None
    if chosen.kind == "binary":
        test_auc = test_score if chosen.metric == "roc_auc" else evaluate(
            network, test_data, chosen.with_metric("roc_auc"), settings.eval_batch_size)
        valid_auc = refined.valid_score if chosen.metric == "roc_auc" else (
            None if valid_data is None  # the service held the valid split: no AUC of it here
            else evaluate(network, valid_data, chosen.with_metric("roc_auc"), settings.eval_batch_size))
    clock.record("test_s", since)
    notice(f"winner {arch_text(refined.winner)} ({params} parameters): valid {chosen.metric} "
           f"{refined.valid_score:.4f}, test {chosen.metric} {test_score:.4f}")

    elapsed = clock.elapsed()
    phases = dict(clock.phases, plan={"n": plan.n, "k": plan.k, "u": plan.u,
                                      "planned_filtering_s": plan.filtering_s,
                                      "planned_refinement_s": plan.refinement_s,
                                      "available_s": None if budget_s is None else available,
                                      "epoch_cap_s": epoch_cap, "cost_model": cost.to_json(),
                                      "max_params": max_params, "max_trials": max_trials},
                  refinement=refined.summary, rows=rows)
    best_arch = arch_text(refined.winner)
    run = {"dataset": dataset, "label": label, "layout_id": layout.layout_id, "budget_s": budget_s,
           "tfmem": tfmem, "refinement": refined.mode, "n_scored": scored.n_scored,
           "k_refined": len(candidates), "u": plan.u, "t1": t1, "t2": t2, "phases": phases,
           "best_arch": best_arch, "valid_auc": valid_auc, "test_auc": test_auc,
           "elapsed_s": elapsed, "seed": seed, "started_at": clock.started_at.isoformat(),
           "task": chosen.kind, "metric": chosen.metric, "valid_score": refined.valid_score,
           "test_score": test_score}
    run_id, model_id = store_run_and_model(session, run, {
        "arch": best_arch, "hyper": hyper, "weights": refined.weights, "valid_auc": valid_auc,
        "test_auc": test_auc, "task": chosen.kind, "metric": chosen.metric,
        "valid_score": refined.valid_score, "test_score": test_score, "params": params})
    return {"run_id": run_id, "best_arch": best_arch, "valid_auc": valid_auc,
            "test_auc": test_auc, "n_scored": scored.n_scored, "k_refined": len(candidates),
            "u": plan.u, "elapsed_s": clock.elapsed(), "model_id": model_id, "task": chosen.kind,
            "metric": chosen.metric, "valid_score": refined.valid_score, "test_score": test_score,
            "params": params}

