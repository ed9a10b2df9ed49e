"""The model-selection systems the experiments compare, each given a dataset and a budget.

* :func:`trails_sql` — (a) TRAILS as shipped: ``SELECT * FROM model_selection(..., seed => s)``
  in the database (filtering through SPI, then successive halving; ``refinement`` = backend
  or service).
* :func:`filtering_only` — (b) filtering, then no selection among trained models: score
  ``n`` archs (default 5,000; scoring stops when a quarter of the budget is spent) with
  ExpressFlow (regularized evolution), take the top-1 and train
  it for the rest of the budget (epochs of 200 iterations, as many as fit, at most 27, valid AUC
  after each; the best epoch's weights are tested).
* :func:`training_based` — (c) training-based selection with no filtering: archs drawn
  uniformly at random from the space, successive halving (η = 3, at most 27 epochs) over the
  largest K, then the largest U, whose cost fits the budget (the cost of one epoch and one
  evaluation measured on a median-sized random arch; a deadline stops it at the budget).
* :func:`fixed_plan` — filtering N then successive halving over K with first rung U, as given
  (the N/K/U experiment).

(b), (c) and :func:`fixed_plan` run in this process on tensors read once
(:func:`exps.common.load_splits`); (b) and (c) are charged the seconds that read took, as
model_selection pays for its own read. Every system keeps back the measured cost of
evaluating the winner on the test split, and reports ``elapsed_s`` including it.
"""

from __future__ import annotations

import time

import numpy as np

from common import Splits, backend_threads, log
from trails.space import arch_text

# seconds kept back at the end of (b), (c) and fixed_plan, beyond the measured test evaluation
RESERVE_S = 0.3


def trails_sql(connection, dataset: str, budget_s: float, label: str, seed: int,
               refinement: str = "backend", tfmem: str = "express_flow") -> dict:
    """(a): one model_selection call in the backend of ``connection``; its row plus
    ``wall_s`` (seconds this client waited)."""
    connection.notices.clear()
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT run_id, best_arch, valid_auc, test_auc, n_scored, k_refined, u,"
                       " elapsed_s, model_id FROM model_selection(%s, %s, label => %s,"
                       " tfmem => %s, refinement => %s, seed => %s, warm_start => false)",
                       (dataset, float(budget_s), label, tfmem, refinement, int(seed)))
        names = [column.name for column in cursor.description]
        row = dict(zip(names, cursor.fetchone()))
    wall_s = time.monotonic() - started
    return {"best_arch": row["best_arch"], "valid_auc": row["valid_auc"], "test_auc": row["test_auc"],
            "n_scored": row["n_scored"], "k": row["k_refined"], "u": row["u"],
            "elapsed_s": row["elapsed_s"], "wall_s": wall_s, "run_id": row["run_id"]}


def prepare_backend(connection, threads: int) -> None:
    backend_threads(connection, threads)


# --- in-process systems ---------------------------------------------------------------------

def _test_reserve(splits: Splits) -> float:
    """Seconds to evaluate a wide model on the test split (measured once), plus RESERVE_S."""
    if not hasattr(splits, "_test_eval_s"):
        from trails.model import build_model
        from trails.refinement.trainer import evaluate_auc

        model = build_model((512, 512, 512, 512), splits.n_ids, splits.n_fields)
        started = time.monotonic()
        evaluate_auc(model, splits.test)
        splits._test_eval_s = time.monotonic() - started
    return splits._test_eval_s + RESERVE_S


def _training_cost(arch, splits: Splits) -> tuple[float, float]:
    """(seconds per epoch, seconds per valid evaluation) of ``arch``, measured as
    model_selection measures them (20 iterations on a sample, scaled)."""
    from trails.profiling import measure_training

    return measure_training(tuple(arch), splits.sample(), splits.n_ids, splits.n_fields,
                            len(splits.train), len(splits.valid), splits.settings)


def train_top1(arch, splits: Splits, deadline: float, seed: int, max_epochs: int = 27) -> dict:
    """Train one arch until ``deadline`` (as many whole epochs as the measured cost allows,
    at most ``max_epochs``; cosine schedule over them), evaluating valid after each epoch;
    the best epoch's model is tested."""
    from trails.families import Candidate
    from trails.model import build_model
    from trails.refinement.trainer import Trial, evaluate_auc, iterations_per_epoch, train

    settings = splits.settings
    epoch_s, eval_s = _training_cost(arch, splits)
    epochs = int(max(1, min(max_epochs, (deadline - time.monotonic()) // (epoch_s + eval_s))))
    per_epoch = iterations_per_epoch(len(splits.train), settings.batch_size, settings.iter_per_epoch)
    trial = Trial(arch, splits.n_ids, splits.n_fields, epochs * per_epoch, settings,
                  seed=Candidate("mlp", tuple(arch)).seed(seed))
    best = None
    for _ in range(epochs):
        losses = train(trial, splits.train, 1, settings.batch_size, settings.iter_per_epoch,
                       deadline=deadline)
        if not losses and best is not None:
            break  # the deadline stopped this epoch: keep the last evaluated model
        auc = evaluate_auc(trial.model, splits.valid, settings.eval_batch_size)
        if best is None or auc > best[0]:
            best = (auc, trial.epochs_trained, trial.state_dict_cpu())
        if time.monotonic() + epoch_s + eval_s > deadline:
            break
    model = build_model(arch, splits.n_ids, splits.n_fields, settings.embedding_dim,
                        settings.batch_norm, state=best[2])
    return {"best_arch": arch_text(arch), "valid_auc": best[0],
            "test_auc": evaluate_auc(model, splits.test, settings.eval_batch_size),
            "epochs": best[1], "k": 1, "u": epochs}


def filtering_only(splits: Splits, budget_s: float, seed: int, n: int = 5000,
                   tfmem: str = "express_flow", filtering_share: float = 0.25) -> dict:
    """(b): score ``n`` archs (stopped once ``filtering_share`` of the budget is spent),
    train the top-1 for the rest of the budget."""
    from trails.filtering import filter_archs

    started = time.monotonic() - splits.load_s  # the data read is charged to the budget
    deadline = started + budget_s - _test_reserve(splits)
    scored = filter_archs(splits.space, splits.scoring, n, tfmem, "evolution", seed=seed,
                          deadline=started + filtering_share * budget_s)
    arch = scored.top(1)[0][0]
    result = train_top1(arch, splits, deadline, seed)
    return dict(result, n_scored=scored.n_scored, elapsed_s=time.monotonic() - started)


def random_archs(space, count: int, seed: int) -> list:
    """``count`` distinct archs drawn uniformly from ``space`` (seeded)."""
    rng = np.random.default_rng(seed)
    seen, archs = set(), []
    while len(archs) < min(count, space.size):
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    return archs


def halving_cost(k: int, u: int, epoch_s: float, eval_s: float, eta: int = 3, max_epochs: int = 27) -> float:
    """Seconds successive halving over ``k`` models from ``u`` epochs costs (epochs + one
    evaluation per model and rung)."""
    from trails.refinement.schedule import halving_rungs

    return sum(r.n_models * (r.epochs_this_rung * epoch_s + eval_s)
               for r in halving_rungs(k, u, eta, max_epochs))


def largest_plan(seconds: float, epoch_s: float, eval_s: float, max_k: int = 2000,
                 max_epochs: int = 27) -> tuple[int, int]:
    """The largest K (≥ 2), then the largest U, with ``halving_cost ≤ seconds``; (1, 0) when
    K = 2, U = 1 does not fit."""
    if halving_cost(2, 1, epoch_s, eval_s) > seconds:
        return 1, 0
    k = 2
    while k < max_k and halving_cost(k + 1, 1, epoch_s, eval_s) <= seconds:
        k += 1
    u = 1
    while u < max_epochs and halving_cost(k, u + 1, epoch_s, eval_s) <= seconds:
        u += 1
    return k, u


def training_based(splits: Splits, budget_s: float, seed: int) -> dict:
    """(c): random archs + successive halving, sized to the budget, no filtering."""
    from trails.refinement.halving import successive_halving
    from trails.refinement.trainer import evaluate_auc

    started = time.monotonic() - splits.load_s
    deadline = started + budget_s - _test_reserve(splits)
    space = splits.space
    pool = random_archs(space, 2000, seed)
    sizes = [sum(a * b for a, b in zip((splits.in_features,) + arch, arch)) for arch in pool[:101]]
    probe = pool[int(np.argsort(sizes)[len(sizes) // 2])]
    epoch_s, eval_s = _training_cost(probe, splits)
    k, u = largest_plan(0.9 * (deadline - time.monotonic()), epoch_s, eval_s)
    if k == 1:
        result = train_top1(pool[0], splits, deadline, seed)
        return dict(result, n_scored=0, elapsed_s=time.monotonic() - started)
    result = successive_halving(pool[:k], splits.train, splits.valid, splits.n_ids, splits.n_fields,
                                u=u, eta=3, max_epochs=27, settings=splits.settings, seed=seed,
                                device="cpu", deadline=deadline)
    test_auc = evaluate_auc(result.model(), splits.test, splits.settings.eval_batch_size)
    return {"best_arch": result.winner.text, "valid_auc": result.valid_score,
            "test_auc": test_auc, "epochs": result.winner_epochs, "k": k, "u": u, "n_scored": 0,
            "deadline_hit": result.deadline_hit, "elapsed_s": time.monotonic() - started}


def fixed_plan(splits: Splits, budget_s: float, n: int, k: int, u: int, seed: int,
               tfmem: str = "express_flow") -> dict:
    """Filtering ``n`` archs, then successive halving over the top ``k`` from ``u`` epochs,
    stopped at the budget (data read not charged: it is the same for every plan)."""
    from trails.filtering import filter_archs
    from trails.refinement.halving import successive_halving
    from trails.refinement.trainer import evaluate_auc

    started = time.monotonic()
    deadline = started + budget_s - _test_reserve(splits)
    scored = filter_archs(splits.space, splits.scoring, n, tfmem, "evolution", seed=seed)
    filtering_s = time.monotonic() - started
    candidates = [arch for arch, _ in scored.top(k)]
    result = successive_halving(candidates, splits.train, splits.valid, splits.n_ids,
                                splits.n_fields, u=u, eta=3, max_epochs=27,
                                settings=splits.settings, seed=seed, device="cpu",
                                deadline=deadline)
    test_auc = evaluate_auc(result.model(), splits.test, splits.settings.eval_batch_size)
    log(f"  N={n} K={k} U={u}: {result.winner.text} valid {result.valid_score:.4f} "
        f"test {test_auc:.4f} ({result.trained_epochs}/{result.planned_epochs} epochs"
        f"{', deadline hit' if result.deadline_hit else ''})")
    return {"best_arch": result.winner.text, "valid_auc": result.valid_score,
            "test_auc": test_auc, "filtering_s": filtering_s, "trained_epochs": result.trained_epochs,
            "planned_epochs": result.planned_epochs, "deadline_hit": result.deadline_hit,
            "elapsed_s": time.monotonic() - started}
