"""The systems of the peers benchmark (``exps/peers.py``), each run as its users would run it.

* :func:`trails_call` — ``SELECT * FROM model_selection(dataset, budget, label => ..., seed => s,
  task => ..., metric => ..., refinement => ..., families => 'auto' | 'mlp')`` in the database;
  the function's own ``elapsed_s`` and the client's wall time are both kept.
* :func:`flaml_run` — ``flaml.AutoML().fit(X_train, y_train, X_val=..., y_val=..., task=...,
  time_budget=B, metric=..., n_jobs=threads, seed=s)`` with FLAML's default estimators. The clock
  starts **before the rows are read** from PostgreSQL (psycopg2 COPY → pandas), and FLAML gets
  ``time_budget = budget − seconds spent reading``. The fitted model is then scored on the test
  table (not charged).
* :func:`fixed_mlp` — one fixed MLP (default ``256-256-256-256``: the repository has no
  fixed-arch baseline, so this is :func:`systems.train_top1`'s loop with a fixed arch instead of
  ExpressFlow's top-1, made task-aware): the product's network, training settings and
  trainer, trained for the whole budget (as many epochs as the measured epoch cost allows, at most
  ``max_epochs``, cosine over them), valid score after each epoch, the best epoch tested. Its
  clock starts before its own psycopg2 read of the three splits too.
"""

from __future__ import annotations

import json
import math
import time

import peers_data
from common import log
from peers_data import DatasetSpec

FIXED_ARCH = (256, 256, 256, 256)
RESERVE_S = 0.3


# --- trails -------------------------------------------------------------------------------

def families_supported(connection) -> bool:
    """Whether the installed ``model_selection`` takes ``families``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT bool_or('families' = ANY(proargnames)) FROM pg_proc"
                       " WHERE proname = 'model_selection'")
        return bool(cursor.fetchone()[0])


def trails_call(connection, spec: DatasetSpec, budget_s: float, seed: int, families: str | None,
                refinement: str = "backend", test_variance: float | None = None) -> dict:
    """One model_selection call; ``families`` None leaves the argument out (today's MLP-only
    behaviour on an extension without it)."""
    sql = ("SELECT * FROM model_selection(%s, %s, label => %s, seed => %s, task => %s,"
           " metric => %s, refinement => %s" + (", families => %s, warm_start => false)" if families else ")"))
    params = [spec.name, float(budget_s), spec.label, int(seed), spec.task, spec.metric, refinement]
    params += [families] if families else []
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        row = dict(zip(names, cursor.fetchone()))
    wall_s = time.monotonic() - started
    family = row.get("family") or row.get("families")
    winner = row["best_arch"] if not family else f"{family}: {row['best_arch']}"
    test_rmse = None
    if spec.task == "regression" and test_variance is not None and row["test_score"] is not None:
        # RMSE² = (1 − R²) · var_pop(y_test): exact for sklearn's r2_score
        test_rmse = math.sqrt(max(0.0, 1.0 - row["test_score"]) * test_variance)
    return {"test_score": row["test_score"], "valid_score": row["valid_score"], "test_rmse": test_rmse,
            "elapsed_s": row["elapsed_s"], "wall_s": wall_s, "winner": winner,
            "detail": f"run {row['run_id']}, model {row['model_id']}, K={row['k_refined']} U={row['u']}"
                      f", {row['n_scored']} scored, params {row.get('params')}"}


# --- FLAML --------------------------------------------------------------------------------

def flaml_run(connection, spec: DatasetSpec, budget_s: float, seed: int, threads: int) -> dict:
    import numpy as np
    from flaml import AutoML
    from sklearn import metrics

    started = time.monotonic()
    X, y = peers_data.read_split(connection, spec, "train")
    categories = {c: X[c].cat.categories for c in X.columns if str(X[c].dtype) == "category"}
    Xv, yv = peers_data.read_split(connection, spec, "valid", categories)
    read_s = time.monotonic() - started
    automl = AutoML()
    automl.fit(X, y, X_val=Xv, y_val=yv, task="classification" if spec.task == "binary" else "regression",
               metric=spec.metric, time_budget=max(1.0, budget_s - read_s), n_jobs=threads, seed=seed,
               verbose=0)
    elapsed_s = time.monotonic() - started
    Xt, yt = peers_data.read_split(connection, spec, "test", categories)
    if spec.task == "binary":
        positive = automl.classes_[1]
        proba = automl.predict_proba(Xt)[:, 1]
        test_score = float(metrics.roc_auc_score(np.asarray(yt) == positive, proba))
        test_rmse = None
    else:
        predicted = automl.predict(Xt)
        test_score = float(metrics.r2_score(yt, predicted))
        test_rmse = float(math.sqrt(metrics.mean_squared_error(yt, predicted)))
    config = {k: (v.item() if hasattr(v, "item") else v) for k, v in (automl.best_config or {}).items()}
    config = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in config.items()}
    return {"test_score": test_score, "valid_score": 1.0 - automl.best_loss, "test_rmse": test_rmse,
            "elapsed_s": elapsed_s, "wall_s": elapsed_s, "read_s": read_s,
            "winner": f"{automl.best_estimator}: {json.dumps(config, default=str)}",
            "detail": f"time_budget {budget_s - read_s:.1f} s, read {read_s:.2f} s"}


# --- one fixed MLP ------------------------------------------------------------------------

def fixed_mlp(spec: DatasetSpec, budget_s: float, seed: int, arch=FIXED_ARCH, max_epochs: int = 200) -> dict:
    from common import connect
    from trails.context import resolve_context
    from trails.data.session import PgSession
    from trails.model import build_model
    from trails.profiling import measure_training
    from trails.refinement.data import SplitTensors, load_split
    from trails.families import Candidate
    from trails.refinement.settings import TrainingSettings
    from trails.refinement.trainer import Trial, evaluate, iterations_per_epoch, train
    from trails.space import arch_text

    started = time.monotonic()
    connection = connect(autocommit=False)  # server-side cursors need a transaction
    try:
        session = PgSession(connection)
        context = resolve_context(session, spec.name, spec.label, task=spec.task)
        dataset, layout = context.dataset, context.layout
        task = layout.task.with_metric(spec.metric)
        train_split = load_split(session, dataset, layout, "train")
        valid = load_split(session, dataset, layout, "valid")
        test = load_split(session, dataset, layout, "test")
        connection.commit()
    finally:
        connection.close()
    read_s = time.monotonic() - started
    settings = TrainingSettings.from_config()
    n_ids, n_fields = layout.n_ids, layout.n_fields
    sample = SplitTensors(train_split.ids[:4096], train_split.values[:4096], train_split.labels[:4096])
    epoch_s, eval_s = measure_training(tuple(arch), sample, n_ids, n_fields, len(train_split), len(valid),
                                       settings, task=task)
    test_eval_s = eval_s * len(test) / max(1, len(valid))
    deadline = started + budget_s - test_eval_s - RESERVE_S
    epochs = int(max(1, min(max_epochs, (deadline - time.monotonic()) // (epoch_s + eval_s))))
    per_epoch = iterations_per_epoch(len(train_split), settings.batch_size, settings.iter_per_epoch)
    trial = Trial(tuple(arch), n_ids, n_fields, epochs * per_epoch, settings,
                  seed=Candidate("mlp", tuple(arch)).seed(seed), task=task)
    best = None
    for _ in range(epochs):
        losses = train(trial, train_split, 1, settings.batch_size, settings.iter_per_epoch, deadline=deadline)
        if not losses and best is not None:
            break  # the deadline stopped this epoch: keep the last evaluated model
        score = evaluate(trial.model, valid, task, settings.eval_batch_size)
        if best is None or task.better(score, best[0]):
            best = (score, trial.epochs_trained, trial.state_dict_cpu())
        if time.monotonic() + epoch_s + eval_s > deadline:
            break
    model = build_model(tuple(arch), n_ids, n_fields, settings.embedding_dim, settings.batch_norm,
                        state=best[2], n_outputs=task.n_outputs)
    test_score = evaluate(model, test, task, settings.eval_batch_size)
    elapsed_s = time.monotonic() - started
    test_rmse = (evaluate(model, test, task.with_metric("rmse"), settings.eval_batch_size)
                 if spec.task == "regression" else None)
    log(f"  fixed_mlp {arch_text(arch)}: {best[1]}/{epochs} epochs (best/planned), "
        f"epoch {epoch_s:.2f} s, read {read_s:.2f} s")
    return {"test_score": test_score, "valid_score": best[0], "test_rmse": test_rmse,
            "elapsed_s": elapsed_s, "wall_s": elapsed_s, "read_s": read_s,
            "winner": f"mlp: {arch_text(arch)}, epoch {best[1]} of {epochs}",
            "detail": f"epoch {epoch_s:.2f} s, eval {eval_s:.2f} s"}
