"""Benchmark: train candidates one at a time (what successive halving does) or several at once?

Successive halving trains its candidates one after another, each with every torch thread. The
alternative measured here runs them at once, one Python thread per candidate with one torch
thread each (torch ops release the GIL), so that narrow archs — bound by per-iteration
overhead, not arithmetic — might use the cores better. For each pair of archs, interleaved,
``--repeats`` times: wall seconds for one epoch (200 iterations, batch 512) of every candidate

* sequential: one candidate after the other, ``--threads`` torch threads;
* concurrent: all candidates at once, one thread each (``torch.set_num_threads(1)``),

and the ratio sequential / concurrent (> 1: concurrent is faster). The data is synthetic and
frappe-shaped (``scripts/bench_training_precision.py``); the product's Trial and train are used.

Usage: /opt/trails-venv/bin/python scripts/bench_concurrent_training.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch
# a sibling script: importable because Python puts a script's own folder first on its path
from bench_training_precision import FRAPPE_FIELD_SIZES, frappe_shaped, make_rule

from trails.refinement.trainer import Trial, TrainingSettings, train

PAIRS = [((64, 64, 64, 64), (64, 64, 64, 64)), ((256, 256, 256, 256), (256, 256, 256, 256)),
         ((512, 512, 512, 512), (128, 128, 128, 128))]


def one_epoch_each(archs, data, settings, seed: int) -> list[Trial]:
    return [Trial(arch, sum(FRAPPE_FIELD_SIZES), len(FRAPPE_FIELD_SIZES), 10**9, settings, seed + i)
            for i, arch in enumerate(archs)]


def sequential_s(archs, data, settings, threads: int, seed: int) -> float:
    torch.set_num_threads(threads)
    trials = one_epoch_each(archs, data, settings, seed)
    started = time.perf_counter()
    for trial in trials:
        train(trial, data, 1, settings.batch_size, settings.iter_per_epoch)
    return time.perf_counter() - started


def concurrent_s(archs, data, settings, seed: int) -> float:
    torch.set_num_threads(1)
    trials = one_epoch_each(archs, data, settings, seed)
    workers = [threading.Thread(target=train, args=(trial, data, 1, settings.batch_size, settings.iter_per_epoch))
               for trial in trials]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the sequential run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be >= 1")
    settings = TrainingSettings(precision="fp32")
    data = frappe_shaped(102_400, make_rule(0), seed=1, device="cpu")
    warm = one_epoch_each([(8,)], data, settings, 0)[0]
    train(warm, data, 1, settings.batch_size, 5)  # first-use costs (optimizer import, kernels)
    print(f"synthetic frappe-shaped data, {len(data):,} rows; one epoch = {settings.iter_per_epoch} "
          f"iterations of batch {settings.batch_size}; sequential with {args.threads} threads, "
          f"concurrent with 1 thread per candidate; median of {args.repeats}")
    for pair in PAIRS:
        sequential, concurrent = [], []
        for repeat in range(args.repeats):
            sequential.append(sequential_s(pair, data, settings, args.threads, repeat))
            concurrent.append(concurrent_s(pair, data, settings, repeat))
        seq, con = statistics.median(sequential), statistics.median(concurrent)
        names = " + ".join("-".join(map(str, arch)) for arch in pair)
        print(f"{names:<34} sequential {seq:6.2f} s   concurrent {con:6.2f} s   "
              f"sequential/concurrent {seq / con:4.2f}x")


if __name__ == "__main__":
    main()
