"""Measuring what training one arch costs: seconds per epoch and per valid evaluation, timed on
a sample on the training device (t2, the re-plan and the cost model use it; t1 is
:func:`trails.filtering.profile_scoring`)."""

from __future__ import annotations

import dataclasses
import time

import torch

from trails.refinement.data import SplitTensors
from trails.refinement.trainer import Trial, TrainingSettings, evaluate, iterations_per_epoch, train
from trails.task import BINARY_01, Task

# Iterations timed per measurement, after the warm-up ones: enough for a stable figure (the
# finishing phase absorbs the error: it trains to the deadline at the speed it measures).
MEASURED_ITERATIONS = 10
WARM_UP_ITERATIONS = 3


def measure_training(arch: tuple, sample: SplitTensors, n_ids: int, n_fields: int,
                     train_rows: int, valid_rows: int, settings: TrainingSettings,
                     iterations: int = MEASURED_ITERATIONS, device="cpu",
                     task: Task = BINARY_01) -> tuple[float, float]:
    """(seconds of one epoch of ``arch``, seconds of one evaluation of ``valid_rows`` rows —
    the valid rows a rung decision evaluates, :func:`trails.selection.measure.decision_rows`).

    Trains ``iterations`` real iterations (after ``WARM_UP_ITERATIONS`` warm-up iterations) on ``sample`` and
    scales to the epoch's iterations (``iter_per_epoch``, or fewer for a small train split);
    evaluates ``sample`` once and scales to ``valid_rows``. (t2 counts an evaluation in every
    epoch, which over-estimates rungs of several epochs: the first plan errs on the safe side.)
    """
    one_epoch = iterations_per_epoch(train_rows, settings.batch_size, settings.iter_per_epoch)
    probe = dataclasses.replace(settings, iter_per_epoch=1)
    trial = Trial(arch, n_ids, n_fields, iterations + WARM_UP_ITERATIONS, probe, seed=0, device=device,
                  task=task)
    train(trial, sample, WARM_UP_ITERATIONS, settings.batch_size, 1)  # allocations, kernel selection
    started = time.perf_counter()
    train(trial, sample, iterations, settings.batch_size, 1)
    per_iteration = (time.perf_counter() - started) / iterations
    started = time.perf_counter()
    if len(torch.unique(sample.labels)) > 1:
        evaluate(trial.model, sample, task, settings.eval_batch_size)
    per_row = (time.perf_counter() - started) / max(1, len(sample))
    return per_iteration * one_epoch, per_row * valid_rows
