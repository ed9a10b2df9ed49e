"""The weight magnitudes every arch of a vectorised flow score is a slice of.

:class:`SharedWeights` draws, per layer position, one matrix of magnitudes at the largest width
(and one vector for the biases); an arch takes the top-left slice and scales it by its own
fan-in, so that each arch's weights and biases are distributed as PyTorch's default
``nn.Linear`` init in absolute value, ``|U(−1/√fan_in, 1/√fan_in)|``. Entries are drawn in fixed
TILE × TILE tiles, each from its own stream of (seed, layer, tile), so a weight depends on
(seed, layer, row, column) only: an arch's score does not depend on ``max_width`` nor on which
other archs are scored with it.

The perturbation. ``Δ`` is one fixed standard-normal (BATCH_ROWS, in_features) draw per seed,
shared by every arch (the input width is the same for all archs, so every arch sees the same
direction, as its weights are slices of the same draws). TRAILS draws a fresh ``randn`` per
model; fixing it makes the score a deterministic function of (arch, seed).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from trails.errors import TrailsError

BATCH_ROWS = 4  # rows of TRAILS' all-ones input
EPSILON = 1e-5  # size of the input perturbation (only the autograd reference needs it)
TILE = 64  # weights are drawn in TILE × TILE blocks, each from its own random stream

_HIDDEN_STREAM = 11
_OUTPUT_STREAM = 12
_PERTURBATION_STREAM = 13
_HIDDEN_BIAS_STREAM = 14
_OUTPUT_BIAS_STREAM = 15


def _tiled_uniform(seed: int, stream: int, layer: int, rows: int, cols: int) -> np.ndarray:
    """U[0, 1) matrix whose entry (i, j) depends on (seed, stream, layer, i, j) only."""
    out = np.empty((rows, cols), dtype=np.float64)
    for row0 in range(0, rows, TILE):
        for col0 in range(0, cols, TILE):
            tile = np.random.default_rng([seed, stream, layer, row0 // TILE, col0 // TILE]).random((TILE, TILE))
            out[row0:row0 + TILE, col0:col0 + TILE] = tile[:min(TILE, rows - row0), :min(TILE, cols - col0)]
    return out


class SharedWeights:
    """Weight magnitudes shared by all archs of up to ``layers`` hidden layers of width ≤ ``max_width``.

    Args:
        in_features: input width (``n_fields × embedding_dim``).
        layers: the most hidden layers an arch may have.
        max_width: the largest hidden width an arch may have.
        seed: ≥ 0; fixes every draw.
        n_outputs: logits out.

    Attributes:
        hidden: ``hidden[l]`` is the (max_width, fan_in_max) matrix of unscaled magnitudes in
            [0, 1) for hidden layer ``l`` (fan_in_max = in_features for l = 0, else max_width).
        hidden_bias: ``hidden_bias[l]`` is the (max_width,) vector of unscaled bias magnitudes.
        output: (n_outputs, max_width) unscaled magnitudes of the output layer.
        output_bias: (n_outputs,) unscaled bias magnitudes of the output layer.
        perturbation: Δ, (BATCH_ROWS, in_features) standard normal.
        output_column_sums: (max_width,) column sums of ``output``: the flows need only these.

    Raises:
        TrailsError (a ValueError): for a non-positive size or a negative seed.
    """

    def __init__(self, in_features: int, layers: int, max_width: int, seed: int, n_outputs: int = 2):
        if min(in_features, layers, max_width, n_outputs) < 1:
            raise TrailsError(f"in_features, layers, max_width and n_outputs must be >= 1, got "
                              f"{in_features}, {layers}, {max_width}, {n_outputs}")
        if seed < 0:
            raise TrailsError(f"seed must be >= 0, got {seed}")
        self.in_features, self.layers, self.max_width = int(in_features), int(layers), int(max_width)
        self.seed, self.n_outputs = int(seed), int(n_outputs)
        self.hidden = [
            _tiled_uniform(self.seed, _HIDDEN_STREAM, layer, self.max_width,
                           self.in_features if layer == 0 else self.max_width)
            for layer in range(self.layers)
        ]
        self.hidden_bias = [_tiled_uniform(self.seed, _HIDDEN_BIAS_STREAM, layer, self.max_width, 1)[:, 0]
                            for layer in range(self.layers)]
        self.output = _tiled_uniform(self.seed, _OUTPUT_STREAM, 0, self.n_outputs, self.max_width)
        self.output_bias = _tiled_uniform(self.seed, _OUTPUT_BIAS_STREAM, 0, self.n_outputs, 1)[:, 0]
        self.perturbation = np.random.default_rng([self.seed, _PERTURBATION_STREAM]).standard_normal(
            (BATCH_ROWS, self.in_features))
        self.output_column_sums = self.output.sum(axis=0)

    def check(self, archs: np.ndarray) -> None:
        """Raise TrailsError unless every arch fits these weights."""
        if archs.ndim != 2 or archs.shape[1] < 1 or archs.shape[1] > self.layers:
            raise TrailsError(f"archs must all have the same number of layers, 1..{self.layers}; got shape "
                              f"{archs.shape}")
        if archs.size and (archs.min() < 1 or archs.max() > self.max_width):
            raise TrailsError(f"arch widths must lie in 1..{self.max_width}, got {archs.min()}..{archs.max()}")

    def arch_weights(self, arch: Sequence[int]) -> list[np.ndarray]:
        """The (scaled) |weights| of ``arch``: hidden layers then the output layer, each
        (fan_out, fan_in)."""
        arch = [int(width) for width in arch]
        self.check(np.asarray([arch]))
        fan_ins = [self.in_features, *arch]
        weights = [self.hidden[layer][:width, :fan_ins[layer]] / math.sqrt(fan_ins[layer])
                   for layer, width in enumerate(arch)]
        weights.append(self.output[:, :arch[-1]] / math.sqrt(arch[-1]))
        return weights

    def arch_biases(self, arch: Sequence[int]) -> list[np.ndarray]:
        """The (scaled) |biases| of ``arch``: hidden layers then the output layer, each (fan_out,)."""
        arch = [int(width) for width in arch]
        self.check(np.asarray([arch]))
        fan_ins = [self.in_features, *arch]
        biases = [self.hidden_bias[layer][:width] / math.sqrt(fan_ins[layer]) for layer, width in enumerate(arch)]
        biases.append(self.output_bias / math.sqrt(arch[-1]))
        return biases


@functools.lru_cache(maxsize=8)
def shared_weights(in_features: int, layers: int, max_width: int, seed: int, n_outputs: int = 2) -> SharedWeights:
    """A cached :class:`SharedWeights` (values do not depend on ``layers``/``max_width`` beyond their extent)."""
    return SharedWeights(in_features, layers, max_width, seed, n_outputs)


def shared_weights_for(archs: np.ndarray, in_features: int, seed: int, n_outputs: int = 2) -> SharedWeights:
    """Cached weights large enough for ``archs``; the extent is rounded up to a whole tile so
    that repeated calls hit the cache."""
    max_width = int(math.ceil(int(archs.max()) / TILE) * TILE)
    return shared_weights(int(in_features), int(archs.shape[1]), max_width, int(seed), int(n_outputs))

