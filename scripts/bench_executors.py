"""Benchmark: wall time of one refinement (successive halving) on the local executor and on Ray.

One refinement = :func:`trails.refinement.halving.successive_halving` over ``--k`` candidate
archs of frappe's space (drawn with ``--seed``) on frappe's real train/valid splits, no deadline
(a fixed amount of work: rungs K×U, K/η×3U, ... up to ``--max-epochs``), measured

* ``local``: the refinement service's default executor, one candidate after the other in this
  process, ``--threads`` torch threads;
* ``ray-1``: a private Ray instance on 127.0.0.1, 1 worker reserving ``--threads`` CPUs (and
  running that many torch threads);
* ``ray-2``: 2 workers of ``--threads // 2`` CPUs each.

The Ray workers are started before the timing (the service keeps them for its lifetime); each
timed refinement includes shipping the job's data to the object store and into the workers.
Configurations interleave, ``--repeats`` times; the medians and the ratio local / ray (> 1: Ray
is faster) are printed. Run it alone: 2 cores here.

Usage: /opt/trails-venv/bin/python scripts/bench_executors.py [--k 9] [--u 1] [--max-epochs 9]
       [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from dataclasses import dataclass

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the private instance binds 127.0.0.1

import psycopg2  # noqa: E402
import torch  # noqa: E402

from trails.context import resolve_context  # noqa: E402
from trails.data.session import PgSession  # noqa: E402
from trails.refinement.data import load_split  # noqa: E402
from trails.refinement.halving import successive_halving  # noqa: E402
from trails.refinement.ray_executor import RayExecutor  # noqa: E402
from trails.refinement.trainer import TrainingSettings  # noqa: E402
from trails.space import DEFAULT_LAYERS, DEFAULT_WIDTHS, arch_text  # noqa: E402


@dataclass
class Splits:
    """A dataset's train and valid splits as CPU tensors, with its layout's sizes."""

    train: object
    valid: object
    n_ids: int
    n_fields: int


def load_splits(name: str, label: str = "label") -> Splits:
    """``name``'s train and valid splits, read once through psycopg2 (the service's path), as
    ``exps/common.load_splits`` reads them."""
    connection = psycopg2.connect("")  # from the PG* variables; server-side cursors need a transaction
    session = PgSession(connection)
    context = resolve_context(session, name, label, task="binary")
    train = load_split(session, context.dataset, context.layout, "train")
    valid = load_split(session, context.dataset, context.layout, "valid")
    connection.rollback()
    return Splits(train, valid, context.layout.n_ids, context.layout.n_fields)


def refinement_s(splits, candidates, args, executor) -> tuple[float, object]:
    started = time.perf_counter()
    result = successive_halving(candidates, splits.train, splits.valid, splits.n_ids, splits.n_fields,
                                args.u, 3, args.max_epochs, settings=TrainingSettings.from_config(),
                                seed=0, device="cpu", executor=executor)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="frappe")
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--u", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("PGDATABASE", "trails")
    torch.set_num_threads(args.threads)
    splits = load_splits(args.dataset)
    draw = random.Random(args.seed)
    candidates = [tuple(draw.choice(DEFAULT_WIDTHS) for _ in range(DEFAULT_LAYERS)) for _ in range(args.k)]
    print(f"{args.dataset}: {len(splits.train)} train / {len(splits.valid)} valid rows; candidates "
          f"{', '.join(arch_text(arch) for arch in candidates)}; U={args.u} eta=3 R={args.max_epochs}; "
          f"{os.cpu_count()} CPUs, local with {args.threads} torch threads", flush=True)

    started = time.perf_counter()
    import ray

    # both pools exist at once (only one runs at a time): Ray is told of twice the CPUs so that
    # it places both; a pool that is not running stays idle
    ray.init(address="local", num_cpus=2 * args.threads, include_dashboard=False, logging_level="warning")
    executors = {"local": None,
                 "ray-1": RayExecutor("", workers=1, cpus_per_worker=args.threads),
                 "ray-2": RayExecutor("", workers=2, cpus_per_worker=max(1, args.threads // 2))}
    print(f"Ray workers started in {time.perf_counter() - started:.1f} s (not timed below)", flush=True)
    times: dict[str, list[float]] = {name: [] for name in executors}
    for repeat in range(args.repeats):
        for name, executor in executors.items():
            seconds, result = refinement_s(splits, candidates, args, executor)
            times[name].append(seconds)
            print(f"repeat {repeat + 1} {name:6s}: {seconds:6.2f} s  winner {arch_text(result.winner)} "
                  f"valid AUC {result.valid_score:.4f}, {result.trained_epochs} epochs", flush=True)
    local = statistics.median(times["local"])
    print("\nmedian wall time of one refinement (s), and local / executor:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:6s} {median:7.2f}  (min {min(values):.2f}, max {max(values):.2f})  ratio {local / median:.2f}")
    for executor in executors.values():
        if executor is not None:
            executor.close()


if __name__ == "__main__":
    main()
