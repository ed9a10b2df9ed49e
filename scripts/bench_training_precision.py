"""Benchmark: one training epoch in float32 against bfloat16 autocast, and the AUC of each.

Prints, measured side by side in one run through the product's path (``Trial``, ``train``,
``evaluate_auc`` of ``trails.refinement.trainer``, settings from ``[refinement]``):
  * what ``precision = auto`` resolves to on this machine (native bfloat16 or not);
  * the median seconds of one epoch (``--iter-per-epoch`` iterations of ``--batch-size`` rows)
    of ``--arch`` in fp32 and in bf16, epochs interleaved, ``--repeats`` of each; the ratio;
  * the valid AUC after ``--epochs`` epochs in each precision (same seed), with fp32 at a
    second seed beside them as the yardstick of seed-to-seed noise.

The data is synthetic, shaped like frappe: 10 fields with frappe's vocabulary sizes (user 957,
item 4,082, daytime 7, weekday 7, isweekend 2, homework 3, cost 2, weather 9, country 80, city
233: 5,382 ids, from ../shared/data/README.md), one id per field, uniform; labels from a fixed
random linear rule of the ids plus logistic noise (about a third positive), so the AUC means
something but is not frappe's. An epoch's time depends on the shapes only, not on the values.
(frappe's own train split is not in the shared data, and valid+test hold fewer rows than one
200 × 512 epoch.)

On a CPU without bfloat16 instructions (no AVX512_BF16/AMX) bf16 is emulated and may well be
slower than fp32; ``auto`` then trains in fp32.

Usage: /opt/trails-venv/bin/python scripts/bench_training_precision.py [--threads 2]
       [--arch 512-512-512-512] [--batch-size 512] [--iter-per-epoch 200] [--repeats 3]
       [--epochs 2] [--valid-rows 20000] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from trails.refinement.data import SplitTensors
from trails.refinement.precision import cpu_has_native_bf16, resolve_precision
from trails.refinement.trainer import (Trial, TrainingSettings, evaluate_auc, iterations_per_epoch,
                                       train)
from trails.space import parse_arch

FRAPPE_FIELD_SIZES = (957, 4082, 7, 7, 2, 3, 2, 9, 80, 233)  # 5,382 ids in all
POSITIVE_FRACTION = 1 / 3  # frappe: one positive per two sampled negatives
ID_WEIGHT_STD = 0.6  # the rule's weight per id: a row's summed weights have a std near 2
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LabelRule:
    """Label 1 when a row's summed id ``weights`` plus logistic noise exceed ``cut``."""

    weights: np.ndarray
    cut: float


def random_ids(n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """int64 ``(n_rows, 10)``: one uniform id per frappe field, fields laid end to end."""
    offsets = np.cumsum((0,) + FRAPPE_FIELD_SIZES[:-1])
    return np.stack([offset + rng.integers(0, size, n_rows)
                     for offset, size in zip(offsets, FRAPPE_FIELD_SIZES)], axis=1)


def noisy_scores(ids: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return weights[ids].sum(axis=1) + rng.logistic(0.0, 1.0, ids.shape[0])


def make_rule(seed: int) -> LabelRule:
    """Random weights per id, and the cut that makes about :data:`POSITIVE_FRACTION` positive."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, ID_WEIGHT_STD, sum(FRAPPE_FIELD_SIZES))
    sample = noisy_scores(random_ids(100_000, rng), weights, rng)
    return LabelRule(weights, float(np.quantile(sample, 1 - POSITIVE_FRACTION)))


def frappe_shaped(n_rows: int, rule: LabelRule, seed: int, device) -> SplitTensors:
    """``n_rows`` synthetic frappe-shaped rows labelled by ``rule`` (every value 1.0)."""
    rng = np.random.default_rng(seed)
    ids = random_ids(n_rows, rng)
    labels = (noisy_scores(ids, rule.weights, rng) > rule.cut).astype(np.int64)
    return SplitTensors.from_arrays(ids, np.ones(ids.shape, dtype=np.float32), labels, device)


def new_trial(arch, precision: str, max_iterations: int, settings: TrainingSettings, seed: int,
              device) -> Trial:
    return Trial(arch, sum(FRAPPE_FIELD_SIZES), len(FRAPPE_FIELD_SIZES), max_iterations,
                 replace(settings, precision=precision), seed=seed, device=device)


def epoch_seconds(arch, data: SplitTensors, settings: TrainingSettings, repeats: int, seed: int,
                  device) -> dict[str, list[float]]:
    """Seconds of each of ``repeats`` epochs per precision, fp32 and bf16 epochs interleaved,
    each trial warmed up by a few iterations first (train() syncs the device every epoch)."""
    per_epoch = iterations_per_epoch(len(data), settings.batch_size, settings.iter_per_epoch)
    trials = {precision: new_trial(arch, precision, per_epoch * (repeats + 1), settings, seed, device)
              for precision in PRECISIONS}
    for trial in trials.values():
        train(trial, data, 1, settings.batch_size, min(5, per_epoch))
    seconds: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for _ in range(repeats):
        for precision, trial in trials.items():
            start = time.perf_counter()
            train(trial, data, 1, settings.batch_size, settings.iter_per_epoch)
            seconds[precision].append(time.perf_counter() - start)
    return seconds


def valid_auc(arch, precision: str, train_data: SplitTensors, valid_data: SplitTensors,
              settings: TrainingSettings, epochs: int, seed: int, device) -> float:
    """Valid AUC after ``epochs`` epochs (cosine to 0 over them), evaluated in float32."""
    per_epoch = iterations_per_epoch(len(train_data), settings.batch_size, settings.iter_per_epoch)
    trial = new_trial(arch, precision, epochs * per_epoch, settings, seed, device)
    train(trial, train_data, epochs, settings.batch_size, settings.iter_per_epoch)
    return evaluate_auc(trial.model, valid_data, settings.eval_batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--arch", default="512-512-512-512")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--iter-per-epoch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per precision")
    parser.add_argument("--epochs", type=int, default=2, help="epochs trained before the AUC")
    parser.add_argument("--valid-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args()
    if min(args.threads, args.batch_size, args.iter_per_epoch, args.repeats, args.epochs,
           args.valid_rows) < 1:
        parser.error("--threads, --batch-size, --iter-per-epoch, --repeats, --epochs and "
                     "--valid-rows must be >= 1")
    arch = parse_arch(args.arch)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    settings = TrainingSettings.from_config(batch_size=args.batch_size,
                                            iter_per_epoch=args.iter_per_epoch)
    rule = make_rule(args.seed)
    train_rows = args.batch_size * args.iter_per_epoch  # exactly one full epoch of batches
    train_data = frappe_shaped(train_rows, rule, args.seed + 1, device)
    valid_data = frappe_shaped(args.valid_rows, rule, args.seed + 2, device)

    automatic = resolve_precision("auto", device)
    native = (f"CPU bfloat16 instructions (AVX512_BF16/AMX_BF16/ARM BF16): "
              f"{'yes' if cpu_has_native_bf16() else 'no'}" if device.type == "cpu"
              else f"torch.cuda.is_bf16_supported(): {torch.cuda.is_bf16_supported()}")
    print(f"device: {device} ({torch.get_num_threads()} torch threads); {native}; "
          f"precision=auto resolves to {'bf16' if automatic is not None else 'fp32'}")
    print(f"data: SYNTHETIC, frappe-shaped: {len(FRAPPE_FIELD_SIZES)} fields, "
          f"{sum(FRAPPE_FIELD_SIZES):,} ids, {train_rows:,} train rows, {len(valid_data):,} valid "
          f"rows, {float(train_data.labels.float().mean()):.1%} positive (fixed random linear rule "
          f"+ logistic noise)")
    print(f"arch {args.arch}, batch {settings.batch_size}, {settings.iter_per_epoch} iterations per "
          f"epoch, embedding_dim {settings.embedding_dim}, batch_norm {settings.batch_norm}")

    seconds = epoch_seconds(arch, train_data, settings, args.repeats, args.seed, device)
    median = {precision: statistics.median(times) for precision, times in seconds.items()}
    for precision in PRECISIONS:
        print(f"epoch, {precision}: median {median[precision]:6.2f} s over {args.repeats} "
              f"(each: {', '.join(f'{value:.2f}' for value in seconds[precision])})")
    print(f"ratio fp32/bf16: {median['fp32'] / median['bf16']:.2f}x "
          f"({'bf16 faster' if median['bf16'] < median['fp32'] else 'bf16 NOT faster'})")

    aucs = {precision: valid_auc(arch, precision, train_data, valid_data, settings, args.epochs,
                                 args.seed, device)
            for precision in PRECISIONS}
    other_seed = valid_auc(arch, "fp32", train_data, valid_data, settings, args.epochs,
                           args.seed + 1, device)
    print(f"valid AUC after {args.epochs} epoch(s), seed {args.seed}: fp32 {aucs['fp32']:.4f}, "
          f"bf16 {aucs['bf16']:.4f} (difference {aucs['bf16'] - aucs['fp32']:+.4f}); "
          f"noise yardstick: fp32 at seed {args.seed + 1} {other_seed:.4f} "
          f"(difference {other_seed - aucs['fp32']:+.4f})")


if __name__ == "__main__":
    main()
