"""What one candidate costs to train, per arch, on the device that will train it.

A training iteration of the tabular MLP costs a fixed part (embedding lookup, optimizer
bookkeeping, Python and kernel-launch overhead) plus a part proportional to the arch's
multiply-accumulates per row, :func:`arch_macs` (forward and backward are both linear in
them). :class:`CostModel` is that line, fitted on a few archs timed on the training device
(:func:`trails.profiling.measure_training`), so that a 512×4 MLP and a 64×4 one are costed
apart — on a CPU the first costs several times the second; TRAILS, on a GPU, costed every
arch alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trails.errors import TrailsError


def arch_macs(arch: Sequence[int], in_features: int, n_outputs: int = 2) -> int:
    """Multiply-accumulates of the MLP of ``arch`` for one row: in·w1 + w1·w2 + … + wL·outputs."""
    sizes = [int(in_features), *(int(width) for width in arch), int(n_outputs)]
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def macs_of_archs(archs: np.ndarray, in_features: int, n_outputs: int = 2) -> np.ndarray:
    """:func:`arch_macs` of every row of ``archs`` (int (n, L)), as float64 (n,)."""
    archs = np.asarray(archs, dtype=np.float64)
    macs = in_features * archs[:, 0] + archs[:, -1] * n_outputs
    if archs.shape[1] > 1:
        macs += (archs[:, :-1] * archs[:, 1:]).sum(axis=1)
    return macs


@dataclass(frozen=True)
class CostModel:
    """Seconds per training iteration = ``overhead_s`` + ``per_mac_s`` × MACs per row.

    Attributes:
        overhead_s: the arch-independent seconds of one iteration, ≥ 0.
        per_mac_s: seconds per MAC per row of one iteration (the batch size is folded in), ≥ 0.
        in_features: the MLP's input width the model was fitted for.
        iterations_per_epoch: iterations in one epoch of the train split.
    """

    overhead_s: float
    per_mac_s: float
    in_features: int
    iterations_per_epoch: int

    @classmethod
    def fit(cls, timings: Sequence[tuple[Sequence[int], float]], in_features: int,
            iterations_per_epoch: int) -> "CostModel":
        """The line through ``timings`` [(arch, seconds per iteration)] by least squares,
        with both coefficients kept ≥ 0 (one timing: all of it per MAC).

        Raises:
            TrailsError: for no timing or a non-positive one.
        """
        if not timings or min(seconds for _, seconds in timings) <= 0:
            raise TrailsError(f"a cost model needs positive timings, got {list(timings)}")
        macs = np.array([arch_macs(arch, in_features) for arch, _ in timings], dtype=np.float64)
        seconds = np.array([seconds for _, seconds in timings], dtype=np.float64)
        if len(timings) == 1 or np.ptp(macs) == 0:
            return cls(0.0, float(seconds.mean() / macs.mean()), in_features, iterations_per_epoch)
        slope, intercept = np.polyfit(macs, seconds, 1)
        if slope <= 0:  # timing noise on archs of near-equal cost: all of it overhead
            return cls(float(seconds.mean()), 0.0, in_features, iterations_per_epoch)
        if intercept < 0:
            slope, intercept = float((seconds @ macs) / (macs @ macs)), 0.0
        return cls(float(intercept), float(slope), in_features, iterations_per_epoch)

    def iteration_seconds(self, archs) -> np.ndarray:
        """Seconds per training iteration of each arch (rows of an int (n, L) array)."""
        return self.overhead_s + self.per_mac_s * macs_of_archs(archs, self.in_features)

    def epoch_seconds(self, archs) -> np.ndarray:
        """Seconds per epoch of each arch."""
        return self.iteration_seconds(archs) * self.iterations_per_epoch

    def to_json(self) -> dict:
        return {"overhead_s": self.overhead_s, "per_mac_s": self.per_mac_s,
                "in_features": self.in_features, "iterations_per_epoch": self.iterations_per_epoch}
