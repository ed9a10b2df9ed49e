"""Measurements a plan needs, taken on the device and thread count that will train.

t1 is the seconds to score one arch (:func:`trails.filtering.profile_scoring`); t2 the seconds
of one training epoch plus one evaluation of the arch the TFMEM ranks first among a quick
random probe; the :class:`~trails.cost_model.CostModel` is fitted on that arch and the space's
narrowest. Once the candidates are known, :func:`time_candidates` measures the costliest of
them for the plan's revision, :func:`time_boosting` a round of the trees that enter the race,
and :func:`time_tree_prediction` what a trees model's prediction costs per row and tree.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from trails.cost_model import CostModel
from trails.filtering import filter_archs, profile_scoring
from trails.profiling import measure_training
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import TrainingSettings, iterations_per_epoch
from trails.selection.planning import costliest
from trails.selection.prepare import Problem
from trails.tfmem import get_metric

# train rows the training cost (t2) is measured on
PROFILE_ROWS = 4096
# archs scored to time one (t1): many for a vectorised TFMEM, a few for a data-dependent one
T1_ARCHS_AGNOSTIC = 500
T1_ARCHS_DATA = 5
# seconds of scoring the probe that picks the arch t2 is measured on, and its bounds in archs
PROBE_SCORING_S = 0.5
PROBE_ARCHS = (10, 500)
# boosting rounds timed (after as many that bin the sample) to cost a round of trees
PROBE_ROUNDS = 5
# times each probe is timed (the fastest counts: a probe is short, and noise only slows it)
PROBE_REPEATS = 2
# bounds of the exponent p of a round's cost in rows (rows^p) extrapolated from the sample
ROUND_SCALING = (0.4, 1.0)


@dataclass(frozen=True)
class Measurements:
    """t1 (seconds to score one arch), t2 (seconds of one epoch and one evaluation of a
    top-ranked arch) and the per-arch :class:`CostModel`."""

    t1: float
    t2: float
    cost: CostModel


def decision_rows(rows: dict, settings: TrainingSettings) -> int:
    """Valid rows a rung decision evaluates: the valid split, capped at
    ``settings.decision_valid_rows`` (successive halving decides on a stratified sample)."""
    return min(int(rows["valid"]), int(settings.decision_valid_rows))


def measure(problem: Problem, tfmem: str, sample: SplitTensors, settings: TrainingSettings,
            seed: int = 0, allowed=None) -> Measurements:
    """t1 with ``tfmem`` on the problem's space; t2 and the cost model (module docstring),
    measured on ``sample``, a few thousand train rows; ``allowed`` (see :func:`filter_archs`)
    keeps the probe within ``max_params``."""
    context = problem.context
    t1 = profile_scoring(context.space, context.scoring, tfmem,
                         archs=T1_ARCHS_AGNOSTIC if get_metric(tfmem).data_agnostic else T1_ARCHS_DATA, seed=seed)
    probe_n = int(min(PROBE_ARCHS[1], max(PROBE_ARCHS[0], PROBE_SCORING_S / t1)))
    probe = filter_archs(context.space, context.scoring, probe_n, tfmem, "random", seed=seed + 1,
                         allowed=allowed)
    per_epoch = iterations_per_epoch(context.rows["train"], settings.batch_size, settings.iter_per_epoch)
    timings, t2 = [], None
    narrowest = (min(context.space.widths),) * context.space.layers
    for arch in (probe.ranked[0][0] if probe.ranked else narrowest, narrowest):
        epoch_s, evaluation_s = time_arch(problem, arch, sample, settings)
        timings.append((arch, epoch_s / per_epoch))
        t2 = epoch_s + evaluation_s if t2 is None else t2
    return Measurements(t1, t2, CostModel.fit(timings, context.scoring.in_features, per_epoch))


def time_arch(problem: Problem, arch: tuple, sample: SplitTensors, settings: TrainingSettings) -> tuple[float, float]:
    """(seconds of one epoch, seconds of one rung decision's evaluation) of ``arch``."""
    layout, rows = problem.layout, problem.rows
    return measure_training(arch, sample, layout.n_ids, layout.n_fields, rows["train"],
                            decision_rows(rows, settings), settings, task=layout.task)


def time_candidates(problem: Problem, archs: list, sample: SplitTensors,
                    settings: TrainingSettings) -> tuple[float, float]:
    """:func:`time_arch` of the costliest of ``archs``: what the plan's revision costs them at."""
    return time_arch(problem, costliest(archs, problem.context.scoring.in_features), sample, settings)



def _round_seconds(family, candidate, layout, sample: SplitTensors, settings: TrainingSettings, seed: int) -> float:
    """Seconds of one boosting round of ``candidate`` on ``sample``: :data:`PROBE_ROUNDS` rounds
    timed after as many that bin it."""
    probe = dataclasses.replace(settings, rounds_per_unit=PROBE_ROUNDS)
    trial = family.new_trial(candidate.config, layout.n_ids, layout.n_fields, 2 * PROBE_ROUNDS, probe,
                             candidate.seed(seed), task=layout.task)
    family.train(trial, sample, 1, probe)
    started = time.perf_counter()
    family.train(trial, sample, 1, probe)
    return (time.perf_counter() - started) / PROBE_ROUNDS


PREDICT_PROBE_ROUNDS = 20
"""Boosting rounds of the model whose prediction is timed (:func:`time_tree_prediction`)."""


def time_tree_prediction(problem: Problem, candidate, sample: SplitTensors, settings: TrainingSettings,
                         seed: int = 0) -> float:
    """Seconds a model of ``candidate`` (a trees :class:`~trails.families.Candidate`) takes to
    predict one row with one tree: the difference between predicting ``sample`` with all
    :data:`PREDICT_PROBE_ROUNDS` rounds of a model boosted on it and with half of them (each
    the fastest of :data:`PROBE_REPEATS`), per row and tree — what a row costs whatever the
    trees (reading it) left out; all of it per tree when the difference is lost in noise."""
    from trails.families import get_family
    from trails.families.gbdt_config import trees_per_round
    from trails.families.gbdt_model import GbdtModel, raw_predictions

    family, layout = get_family(candidate.family), problem.layout
    probe = dataclasses.replace(settings, rounds_per_unit=PREDICT_PROBE_ROUNDS)
    trial = family.new_trial(candidate.config, layout.n_ids, layout.n_fields, PREDICT_PROBE_ROUNDS, probe,
                             candidate.seed(seed), task=layout.task)
    family.train(trial, sample, 1, probe)
    rounds = trial.booster.current_iteration()
    if not rounds:
        return 0.0

    def seconds(iterations: int) -> float:
        model = GbdtModel(trial.booster, trial.feature_map, iterations)
        timings = []
        for _ in range(PROBE_REPEATS):
            started = time.perf_counter()
            raw_predictions(model, sample.ids, sample.values)
            timings.append(time.perf_counter() - started)
        return min(timings)

    trees = trees_per_round(layout.task.n_outputs)
    whole, half = seconds(rounds), seconds(max(1, rounds // 2))
    per_tree = (whole - half) / (len(sample) * trees * (rounds - max(1, rounds // 2)))
    return per_tree if per_tree > 0 else whole / (len(sample) * trees * rounds)


def time_boosting(problem: Problem, candidate, sample: SplitTensors, settings: TrainingSettings,
                  seed: int = 0) -> float:
    """Seconds of one boosting round of ``candidate`` (a trees :class:`~trails.families.Candidate`)
    on the whole train split, estimated from rounds timed on ``sample`` and on its first quarter
    (each the fastest of :data:`PROBE_REPEATS`).

    A round costs ``a + b·rows`` (histograms) plus what the categories cost whatever the rows
    (frappe: 11 ms a round on 4,096 rows, 50 ms on 202,027), so neither a constant nor a
    proportional extrapolation holds: the cost is extrapolated as ``rows^p`` with ``p`` measured
    between the two sizes and kept within ``ROUND_SCALING`` (a small sample says little about
    how the histograms grow)."""
    from trails.families import get_family

    family, layout = get_family(candidate.family), problem.layout
    small = SplitTensors(sample.ids[:len(sample) // 4], sample.values[:len(sample) // 4],
                         sample.labels[:len(sample) // 4])
    large_s, small_s = (min(_round_seconds(family, candidate, layout, rows, settings, seed)
                            for _ in range(PROBE_REPEATS)) for rows in (sample, small))
    exponent = math.log(max(large_s, 1e-9) / max(small_s, 1e-9)) / math.log(len(sample) / max(1, len(small)))
    exponent = min(ROUND_SCALING[1], max(ROUND_SCALING[0], exponent))
    return large_s * max(1.0, problem.rows["train"] / max(1, len(sample))) ** exponent
