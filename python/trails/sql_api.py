"""The Python side of every SQL function: each PL/Python body is one line calling in here.

Each entry point validates its arguments and turns a :class:`~trails.errors.TrailsError`
into a PostgreSQL ERROR with DETAIL and HINT. Errors from PostgreSQL itself (a cancelled
query, a failed statement) pass through unchanged; anything else becomes an ERROR that
names the bug instead of a bare Python traceback.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import time
import traceback

from trails.errors import TrailsError, is_positive_number, sql_text


def raise_sql_error(plpy, message: str, detail: str | None = None, hint: str | None = None,
                    sqlstate: str = "22023") -> None:
    """Raise what PL/Python reports as ``ERROR:  trails: <message>`` with DETAIL and HINT.

    This is ``plpy.error`` with two differences: the message is prefixed ``trails:``
    instead of ``plpy.Error:`` (PL/Python prefixes the exception's type name), and the
    SQLSTATE is ``sqlstate`` (default 22023, invalid_parameter_value) instead of XX000.
    """
    error_type = type("trails", (plpy.Error,), {"__module__": "builtins"})
    error = error_type(message)
    error.detail, error.hint, error.sqlstate = detail, hint, sqlstate
    raise error


def _failure(name: str, error: Exception) -> tuple[str, str | None, str | None, str]:
    """(message, detail, hint, sqlstate) of a failure in the entry point ``name``: a
    TrailsError as it says, anything else as a bug named plainly, with where it happened."""
    if isinstance(error, TrailsError):
        return error.message, error.detail, error.hint, "22023"
    where = traceback.extract_tb(error.__traceback__)[-1]
    return (f"internal error in {name}: {type(error).__name__}: {error}",
            f"at {where.filename}:{where.lineno} ({where.name})",
            "this is a bug in trails; please report it with this message", "XX000")


def sql_function(body):
    """Decorator: run ``body(plpy, ...)`` and report failures as PostgreSQL errors."""

    @functools.wraps(body)
    def wrapper(plpy, *args, **kwargs):
        try:
            return body(plpy, *args, **kwargs)
        except (plpy.SPIError, plpy.Error):
            # PostgreSQL's own errors, as PL/Python hands them over: a failed query, or a
            # cancel that arrives while a NOTICE is sent (plpy.Error carrying SQLSTATE 57014)
            raise
        except Exception as error:
            message, detail, hint, sqlstate = _failure(body.__name__, error)
            raise_sql_error(plpy, message, detail, hint, sqlstate)

    return wrapper


CANCELLED = "57014"  # query_canceled: what pg_cancel_backend and statement_timeout raise


def reported_failure(width: int):
    """Decorator for functions called once per row: ``body(plpy, ...)`` returns a tuple of
    ``width`` values (the SQL result's columns but the last), and a failure is *returned* as
    the last column instead of raised — JSON ``{message, detail, hint, sqlstate}`` — for
    ``trails.checked`` (plpgsql, no EXCEPTION block) to raise: the user sees the message,
    DETAIL and HINT without PL/Python's traceback, and no row pays for a subtransaction (see
    sql/02_errors.sql). A failed query inside (an SPIError: PL/Python ran it in its own
    subtransaction) is reported with its own SQLSTATE; a cancel is raised as it is."""

    def decorate(body):
        @functools.wraps(body)
        def wrapper(plpy, *args, **kwargs):
            try:
                return (*body(plpy, *args, **kwargs), None)
            except plpy.SPIError as error:
                if getattr(error, "sqlstate", None) == CANCELLED:
                    raise
                failure = {"message": str(error.args[0]) if error.args else "query failed",
                           "detail": getattr(error, "detail", None), "hint": getattr(error, "hint", None),
                           "sqlstate": getattr(error, "sqlstate", None) or "XX000"}
            except plpy.Error:
                raise
            except Exception as error:
                message, detail, hint, sqlstate = _failure(body.__name__, error)
                failure = {"message": f"trails: {message}", "detail": detail, "hint": hint, "sqlstate": sqlstate}
            return (*[None] * width, json.dumps(failure))

        return wrapper

    return decorate


def require_positive(name: str, value, allow_null: bool = False) -> None:
    """Raise TrailsError unless ``value`` is a positive integer (or NULL when allowed)."""
    if value is None and allow_null:
        return
    if value is None or value <= 0:
        raise TrailsError(f"{name} must be a positive integer, got {sql_text(value)}",
                          hint=f"pass {name} > 0")


def _context(plpy, dataset, label, tfmem=None, batch_rows=None, task="auto"):
    """(session, the dataset resolved once in the caller's session)."""
    from trails.context import resolve_context
    from trails.data.session import SpiSession
    from trails.task import check_task_argument

    check_task_argument(task)
    session = SpiSession(plpy)
    return session, resolve_context(session, dataset, label, tfmem, batch_rows, task)


@sql_function
def describe(plpy, dataset, label, task):
    """Rows of ``trails.describe``: one per field, then one per skipped column, then the label
    (kind = its task; note = its classes, or its mean and std)."""
    _, context = _context(plpy, dataset, label, task=task)
    layout = context.layout
    rows = [(i, f.name, f.kind, f.sql_type, f.cardinality, f.first_id, f.last_id, f.missing_id,
             f.unknown_id, None) for i, f in enumerate(layout.fields)]
    rows += [(None, name, "skipped", None, 0, None, None, None, None, why)
             for name, why in layout.skipped.items()]
    resolved = layout.task
    note = (f"classes: {', '.join(resolved.classes)}" if resolved.is_classification
            else f"mean {resolved.mean:.6g}, std {resolved.std:.6g}")
    rows.append((None, layout.label, f"label: {resolved.kind}", None, len(resolved.classes), None, None,
                 None, None, note))
    return rows


@sql_function
def read_batch(plpy, dataset, n, split, label):
    """Rows of ``trails.read_batch``: the first ``n`` encoded rows of a split."""
    from trails.data.batches import read_encoded

    require_positive("n", n)
    session, context = _context(plpy, dataset, label)
    rows = read_encoded(session, context.dataset, context.layout, split, limit=n)
    return [(row_ids, row_values, float(row_label)) for row_ids, row_values, row_label
            in zip(rows.ids.tolist(), rows.values.astype(float).tolist(), rows.labels.tolist())]


@sql_function
def read_batch_stats(plpy, dataset, n, split, label):
    """One row: how many rows were read and encoded through SPI, and how fast (the share of
    positives for a binary label, NULL otherwise)."""
    from trails.data.batches import iter_encoded

    require_positive("n", n, allow_null=True)
    session, context = _context(plpy, dataset, label)
    layout = context.layout
    started = time.perf_counter()
    rows = positives = 0
    binary = layout.task.kind == "binary"
    for chunk in iter_encoded(session, context.dataset, layout, split, limit=n, ordered=False):
        rows += len(chunk)
        positives += int(chunk.labels.sum()) if binary else 0
    seconds = time.perf_counter() - started
    return [(rows, layout.n_fields, layout.n_ids, positives / rows if rows and binary else None, seconds,
             rows / seconds if seconds > 0 else None)]


@sql_function
def environment(plpy):
    """Rows of ``trails.environment``: what the backend's Python sees."""
    import trails
    from trails.config import config_path, data_dir

    rows = [("trails", trails.__version__), ("trails.path", trails.__path__[0]),
            ("python", platform.python_version()), ("python.prefix", sys.prefix),
            ("python.path", ":".join(sys.path)),
            ("config", str(config_path() or "(defaults only)"))]
    try:
        rows.append(("data_dir", str(data_dir())))
    except TrailsError as error:
        rows.append(("data_dir", f"(not set: {error.message})"))
    for module in ("numpy", "torch", "sklearn", "scipy"):
        try:
            rows.append((module, __import__(module).__version__))
        except ImportError as error:
            rows.append((module, f"not importable: {error}"))
    return rows


def _progress_notice(plpy, what: str):
    from trails.selection.report import filtering_progress

    def report(done, total, seconds):
        plpy.notice(filtering_progress(what, done, total, seconds))

    return report


@sql_function
def filtering_phase(plpy, dataset, n, k, tfmem, strategy, label, seed):
    """Rows of ``filtering_phase``: the top ``k`` of ``n`` scored archs, (rank, arch, score)."""
    from trails.filtering import filter_archs, validate_filtering_arguments

    if k is None:
        raise TrailsError("k must be between 1 and n, got NULL", hint="k archs are kept out of the n scored")
    validate_filtering_arguments(n, k, tfmem, strategy, seed)
    _, context = _context(plpy, dataset, label, tfmem)
    result = filter_archs(context.space, context.scoring, n, tfmem, strategy, seed,
                          report=_progress_notice(plpy, f"filtering {dataset} with {tfmem}"))
    plpy.notice(f"filtering {dataset}: {result.n_scored} archs scored with {tfmem} ({strategy}) in "
                f"{result.score_s:.2f} s after {context.resolve_s:.2f} s resolving and reading")
    return [(rank, result.space.encode(arch), score)
            for rank, (arch, score) in enumerate(result.top(k), start=1)]


@sql_function
def coordinator(plpy, budget_s, t1, t2):
    """One row (n, k, u): the coordinator's plan for a budget and measured t1, t2."""
    from trails.config import load_config
    from trails.coordinator import schedule

    for name, value in (("budget_s", budget_s), ("t1", t1), ("t2", t2)):
        if not is_positive_number(value):
            raise TrailsError(f"{name} must be a positive, finite number of seconds, got {sql_text(value)}",
                              hint="budget_s = the time budget, t1 = seconds to score one arch "
                                   "(profiling_filtering_phase), t2 = seconds per training epoch "
                                   "of one model")
    config = load_config()
    plan = schedule(budget_s, t1, t2, eta=config.getint("coordinator", "eta"),
                    ratio=config.getint("coordinator", "ratio"),
                    max_epochs=config.getint("coordinator", "max_epochs"))
    return [(plan.n, plan.k, plan.u)]


@sql_function
def profiling_filtering_phase(plpy, dataset, tfmem, label):
    """t1: measured seconds to score one arch of the dataset's space."""
    from trails.filtering import profile_scoring, validate_filtering_arguments

    validate_filtering_arguments(1, None, tfmem, "random")
    _, context = _context(plpy, dataset, label, tfmem)
    return profile_scoring(context.space, context.scoring, tfmem)


@sql_function
def benchmark_filtering_latency_in_db(plpy, n, dataset, batch_size, tfmem, label):
    """One row: read, score and total seconds for filtering ``n`` archs in the database
    (read = resolving the dataset and reading the TFMEM's batch through SPI)."""
    from trails.filtering import filter_archs, validate_filtering_arguments

    require_positive("batch_size", batch_size)
    validate_filtering_arguments(n, None, tfmem, "evolution")
    started = time.perf_counter()
    _, context = _context(plpy, dataset, label, tfmem, batch_size)
    result = filter_archs(context.space, context.scoring, n, tfmem, "evolution")
    total = time.perf_counter() - started
    return [(context.resolve_s, result.score_s, total, result.n_scored / total)]


def _interruptible(plpy):
    """(interrupt, sleep) for long calls: both let pg_cancel_backend / statement_timeout in."""
    return (lambda: plpy.execute("SELECT 1"), lambda: plpy.execute("SELECT pg_sleep(0.2)"))


@sql_function
def model_selection(plpy, dataset, budget_s, label, tfmem, refinement, seed, task="auto", metric=None,
                    max_params=None, max_trials=None, families="auto", deploy="if_better", warm_start=True,
                    numeric_encoding="auto"):
    """One row: the selected model of ``dataset`` within ``budget_s`` seconds. The budget
    counts from here: importing torch and trails in a fresh backend (seconds) is spent of it."""
    called = time.monotonic()
    import json

    from trails.data.session import SpiSession
    from trails.selection import Hooks, SelectionRequest, select

    interrupt, sleep = _interruptible(plpy)
    request = SelectionRequest(dataset, budget_s, label, tfmem, refinement, seed, task, metric, max_params,
                               max_trials, families, deploy, warm_start, numeric_encoding)
    row = select(SpiSession(plpy), request, Hooks(interrupt, sleep, plpy.notice), started=called)
    return [dict(row, family_scores=json.dumps(row["family_scores"]))]


@sql_function
def model_selection_plan(plpy, dataset, budget_s, label, tfmem, task="auto"):
    """One row: what model_selection would do with this budget, measured now."""
    import json

    from trails.data.session import SpiSession
    from trails.selection import SelectionRequest, explain

    plan = explain(SpiSession(plpy), SelectionRequest(dataset, budget_s, label, tfmem, task=task))
    rungs = ", ".join(f"{r['n_models']} models to {r['total_epochs']} epochs" for r in plan["rungs"])
    return [(plan["t1"], plan["t2"], plan["n"], plan["k"], plan["u"], rungs or "filtering only",
             plan["profile_s"], plan["load_s"], plan["filtering_s"], plan["refinement_s"],
             plan["finish_s"], plan["test_and_store_s"], plan["total_s"], json.dumps(plan["rungs"]),
             plan["epoch_cap_s"], json.dumps(plan["cost_model"]))]


PREDICTION_COLUMNS = ("score", "label", "proba")  # trails.row_prediction's, before its failure


@reported_failure(width=len(PREDICTION_COLUMNS))
def predict_row(plpy, model_id, row, output):
    """(score, label, proba) of one row under stored model ``model_id``: the one ``output``
    asks for (``score``: P(positive) or the predicted value; ``label``: the class; ``proba``:
    JSON class → probability), the others NULL."""
    from trails.predict import predict_one

    columns = [None, None, None]
    columns[PREDICTION_COLUMNS.index(output) if output in PREDICTION_COLUMNS else 0] = predict_one(
        _row_session(plpy), model_id, row, output)
    return columns


def _row_session(plpy):
    """This backend's session for per-row calls (made once: its prepared plans last the backend)."""
    session = _ROW_SESSION.get(id(plpy))
    if session is None:
        from trails.data.session import SpiSession

        session = _ROW_SESSION[id(plpy)] = SpiSession(plpy)
    return session


_ROW_SESSION: dict = {}


@sql_function
def predict_table(plpy, model_id, tbl, with_proba=False):
    """Rows of arrays (ids, scores, labels, probas), one a chunk: every row of ``tbl`` scored."""
    from trails.data.session import SpiSession
    from trails.predict import predict_table as score_table

    chunks = score_table(SpiSession(plpy), model_id, tbl, bool(with_proba))
    return [(chunk["ids"], chunk["scores"], chunk["labels"], chunk["probas"]) for chunk in chunks]


@sql_function
def deploy(plpy, dataset, model_id, strategy):
    """The new ``trails.deployments`` row (see :mod:`trails.deployments`)."""
    from trails.data.session import SpiSession
    from trails.deployments import deploy as append_deployment

    return [append_deployment(SpiSession(plpy), dataset, model_id, strategy)]


@sql_function
def export_model(plpy, model_id, fmt):
    """The stored model as ONNX or TorchScript bytes."""
    from trails.data.session import SpiSession
    from trails.export import export_model as export

    return export(SpiSession(plpy), model_id, fmt)


@sql_function
def model_layout(plpy, model_id):
    """The stored model's layout, task and input/output description, as JSON text."""
    import json

    from trails.data.session import SpiSession
    from trails.export import model_layout as describe_layout

    return json.dumps(describe_layout(SpiSession(plpy), model_id))


@sql_function
def refit(plpy, model_id, budget_s):
    """One row: the model retrained on train + valid (``trails.refit``)."""
    from trails.data.session import SpiSession
    from trails.refit import refit_model

    interrupt, _ = _interruptible(plpy)
    row = refit_model(SpiSession(plpy), model_id, budget_s, interrupt=interrupt, notice=plpy.notice)
    return [(row["model_id"], row["epochs"], row["train_rows"], row["metric"], row["test_score"],
             row["elapsed_s"])]


@sql_function
def jobs(plpy):
    """Rows of trails.jobs(): the refinement service's jobs of the calling role (all of them for
    a superuser; none when the service is not running)."""
    from trails.refinement.client import RefinementClient, ServiceUnavailable

    client = RefinementClient.from_config()
    who = plpy.execute("SELECT current_user AS role, (SELECT rolsuper FROM pg_roles"
                       " WHERE rolname = current_user) AS superuser")[0]
    try:  # a role sees its own jobs; a superuser every job
        listed = client.jobs(None if who["superuser"] else who["role"])
    except ServiceUnavailable as error:
        plpy.notice(error.message)
        return []
    return [(j["job_id"], j["status"], j["progress"], j.get("message"), j.get("dataset"), j.get("k"),
             j.get("elapsed_s"), j.get("winner"), j.get("metric"), j.get("valid_score")) for j in listed]
