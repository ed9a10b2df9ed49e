"""SynFlow and ExpressFlow for many archs at once: numpy matrix products, no autograd.

Why it works. Both metrics (as TRAILS computes them) run a BatchNorm-free MLP with every
parameter made non-negative — weights *and biases*, ``|W_l|``, ``|b_l|`` — in float64 on an
all-ones input of ``BATCH_ROWS`` rows. Every pre-activation is then positive, so every ReLU is the
identity and the network is the affine map ``z_l = W_l z_{l-1} + b_l`` (all entries ≥ 0). With
``R = Σ outputs`` and ``z_l`` the output of hidden layer ``l`` (``l = 1..L``):

* backward: ``g_l = ∂R/∂z_l = BATCH_ROWS · 1ᵀ W_out W_L ⋯ W_{l+1}`` (≥ 0, the same for every row);
* sources: the output is a sum of contributions, one per *source* — the input (source 0) and
  each bias: ``c_0 = g_0 · 1`` for the input, ``c_m = g_m · b_m`` for hidden layer m's bias,
  ``c_{L+1} = BATCH_ROWS · Σ b_out``. ``R = Σ_m c_m``, and a layer's flow counts the sources
  upstream of it: ``S_l = Σ_j z_l[j] · g_l[j] = Σ_{m ≤ l} c_m`` (with ``S_0 = c_0``, the input);
* for the Linear layer into ``z_l`` (or into the output, ``l = L + 1``),
  ``Σ |W ⊙ ∂R/∂W| = g_l · W_l z_{l-1} = S_{l-1}``. Hence

  - SynFlow     = Σ_{l=1..L+1} S_{l-1} = Σ_{m=0..L} (L + 1 − m) · c_m   (weights only, as TRAILS)
  - ExpressFlow = Σ_{l=1..L} ω_l · width_l · S_l,  ω_l = (1/τ_l) / Σ_k (1/τ_k)

  where ``τ_l = ‖z_l(1 + εΔ) − z_l(1)‖_F / ε = ‖W_l ⋯ W_1 Δᵀ‖_F`` is the trajectory length of layer
  ``l`` (exact here, the map being affine: the biases cancel) for the input perturbation ``εΔ``.
  Without biases every ``S_l = R``: SynFlow = (L + 1) R and ExpressFlow = R Σ ω_l width_l.

So an arch costs its forward products on 1 + L + BATCH_ROWS columns (the input's ones vector,
one column per hidden bias — each starts at its own layer and is carried forward by the weights
like the input — and the perturbation rows), and no backward pass: ``c_m`` is the last layer's
running sum of source column m. Archs sharing a prefix of widths share those products:
the archs form a prefix tree, and each node's next-layer output is computed once at the largest
width, its children taking the top rows they need. Siblings differ only in how many leading rows
of their parent's output they keep, so their products are running sums over column blocks of the
next weight matrix (one matrix product per block, for all nodes of a depth at once). Sums over a
node's top rows (τ at every depth, the sources c_m at the last one) are one product per depth
with a (distinct widths × max_width) 0/1 prefix matrix; the last layer needs no weight product.

The weights. :class:`SharedWeights` draws, per layer position, one matrix of magnitudes at the
largest width (and one vector for the biases); an arch takes the top-left slice and scales it by
its own fan-in, so that each arch's weights and biases are distributed as PyTorch's default
``nn.Linear`` init in absolute value, ``|U(−1/√fan_in, 1/√fan_in)|``. Entries are drawn in fixed 64×64 tiles, each from its own
stream of (seed, layer, tile), so a weight depends on (seed, layer, row, column) only: an arch's
score does not depend on ``max_width`` nor on which other archs are scored with it.

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
        # column sums of the unscaled output magnitudes: R needs only these
        self._output_column_sums = self.output.sum(axis=0)

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


# archs per pass of flow_statistics; bounds memory: each distinct prefix holds max_width ×
# (BATCH_ROWS + 2 + depth) float64 — ≤ 9 columns for 4 layers, ≈ 150 MB for 4096 prefixes at
# width 512 (and _next_layer holds up to three such arrays)
CHUNK_ARCHS = 4096


def flow_statistics(archs: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """Source contributions ``c`` (n, L + 2) and trajectory lengths ``τ`` (n, L) of each arch
    (rows of ``archs``, (n, L) ints).

    ``c[:, 0]`` is the input's share of ``R`` (Σ outputs over the BATCH_ROWS all-ones rows),
    ``c[:, m]`` hidden layer m's bias's share (m = 1..L), ``c[:, L + 1]`` the output bias's;
    ``R = c.sum(1)``. ``τ_l = ‖W_l ⋯ W_1 Δᵀ‖_F``. Archs are processed in lexicographic order,
    CHUNK_ARCHS at a time, so that chunks split the prefix tree cleanly; results come back in
    the order given.
    """
    archs = np.asarray(archs, dtype=np.int64)
    shared.check(archs)
    order = np.lexsort(archs.T[::-1])
    sources = np.empty((len(archs), archs.shape[1] + 2))
    trajectory = np.empty(archs.shape, dtype=np.float64)
    for begin in range(0, len(archs), CHUNK_ARCHS):
        chosen = order[begin:begin + CHUNK_ARCHS]
        sources[chosen], trajectory[chosen] = _flow_statistics_of_chunk(archs[chosen], shared)
    return sources, trajectory


def _flow_statistics_of_chunk(archs: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """:func:`flow_statistics` on one chunk, walking the prefix tree of ``archs`` depth by depth.

    At depth d the tree nodes are the distinct width prefixes of length d + 1; their parents are
    the prefixes of length d. ``produced`` holds, for each parent, the next layer's output at the
    largest width, ``W_{d+1}[:, :w_d] z_d / √w_d + b_{d+1} / √w_d`` (max_width rows × columns):
    a node of width w takes its top w rows as its z. Columns, per parent: the BATCH_ROWS
    perturbation rows, the input's ones vector, then one per hidden bias met so far — layer m
    adds its own column ``b_m / √fan_in`` (a source is carried only from where it starts).
    """
    n_archs, depth_count = archs.shape
    radix = shared.max_width + 1
    root_input = np.empty((shared.in_features, BATCH_ROWS + 1))
    root_input[:, :BATCH_ROWS] = shared.perturbation.T
    root_input[:, BATCH_ROWS] = 1.0
    produced = np.empty((shared.max_width, BATCH_ROWS + 2))
    produced[:, :-1] = shared.hidden[0] @ root_input / math.sqrt(shared.in_features)
    produced[:, -1] = shared.hidden_bias[0] / math.sqrt(shared.in_features)
    parent_of_arch = np.zeros(n_archs, dtype=np.int64)
    trajectory = np.empty((n_archs, depth_count))

    for depth in range(depth_count):
        columns = BATCH_ROWS + 2 + depth  # perturbation, input, biases of layers 1..depth + 1
        node_keys, node_of_arch = np.unique(parent_of_arch * radix + archs[:, depth], return_inverse=True)
        node_parent, node_width = np.divmod(node_keys, radix)
        widths, width_index = np.unique(node_width, return_inverse=True)
        # prefix[k] sums rows [0, widths[k]) — a node keeps its parent's top rows; one product
        # for all nodes of the depth
        prefix = (np.arange(shared.max_width)[None, :] < widths[:, None]).astype(np.float64)
        by_parent = produced.reshape(produced.shape[0], -1, columns)
        squares = np.einsum("rpc,rpc->rp", by_parent[:, :, :BATCH_ROWS], by_parent[:, :, :BATCH_ROWS])
        trajectory[:, depth] = np.sqrt((prefix @ squares)[width_index, node_parent])[node_of_arch]
        if depth == depth_count - 1:
            # c_m = BATCH_ROWS · 1ᵀ W_out[:, :w] z[:w, m] / √w, for the sources m
            weighted = (prefix * shared._output_column_sums[None, :]) @ produced
            weighted = weighted.reshape(len(widths), -1, columns)[width_index, node_parent, BATCH_ROWS:]
            node_sources = np.empty((len(node_width), depth_count + 2))
            node_sources[:, :-1] = weighted / np.sqrt(node_width)[:, None]
            node_sources[:, -1] = shared.output_bias.sum() / np.sqrt(node_width)
            return BATCH_ROWS * node_sources[node_of_arch], trajectory
        produced = _next_layer(produced, node_parent, node_width, shared.hidden[depth + 1],
                               shared.hidden_bias[depth + 1], columns)
        parent_of_arch = node_of_arch
    raise AssertionError("unreachable: archs have at least one layer")


def _next_layer(produced: np.ndarray, node_parent: np.ndarray, node_width: np.ndarray,
                weight: np.ndarray, bias: np.ndarray, columns: int) -> np.ndarray:
    """For each node (parent p, width w): ``weight[:, :w] · produced_p[:w] / √w`` followed by
    the bias column ``bias / √w``, stacked as (max_width, (columns + 1) · n_nodes);
    ``produced`` holds ``columns`` columns per parent.

    Siblings differ only in how many leading rows of their parent's output they keep, so the
    products for all widths are running sums over column blocks of ``weight``: one matrix
    product per block between consecutive node widths. Parents are ordered by their widest
    child, so each block updates only the parents that still have a child at least that wide.
    """
    offsets = np.arange(columns)
    n_parents = produced.shape[1] // columns
    widest_child = np.zeros(n_parents, dtype=np.int64)
    np.maximum.at(widest_child, node_parent, node_width)
    parent_order = np.argsort(-widest_child, kind="stable")
    rank_of_parent = np.empty(n_parents, dtype=np.int64)
    rank_of_parent[parent_order] = np.arange(n_parents)
    ordered = produced[:, (parent_order[:, None] * columns + offsets).ravel()]
    descending_widths = widest_child[parent_order]

    result = np.empty((weight.shape[0], len(node_width), columns + 1))
    result[:, :, columns] = bias[:, None] / np.sqrt(node_width)[None, :]
    running = np.zeros((weight.shape[0], ordered.shape[1]))
    start = 0
    for end in np.unique(node_width):
        active = columns * int(np.count_nonzero(descending_widths >= end))
        running[:, :active] += weight[:, start:end] @ ordered[start:end, :active]
        nodes = np.nonzero(node_width == end)[0]
        source = (rank_of_parent[node_parent[nodes]][:, None] * columns + offsets).ravel()
        result[:, nodes, :columns] = (running[:, source] * (1.0 / math.sqrt(end))).reshape(
            weight.shape[0], len(nodes), columns)
        start = end
    return result.reshape(weight.shape[0], -1)


def as_arch_array(archs: Sequence[Sequence[int]]) -> np.ndarray:
    """``archs`` as an int64 (n, L) array; TrailsError when their depths differ."""
    if len(archs) == 0:
        return np.zeros((0, 1), dtype=np.int64)
    try:
        array = np.asarray([tuple(arch) for arch in archs], dtype=np.int64)
    except ValueError:
        raise TrailsError("archs scored together must all have the same number of layers") from None
    if array.ndim != 2:
        raise TrailsError("each arch must be a sequence of widths")
    return array


def synflow_scores(archs: Sequence[Sequence[int]], shared: SharedWeights) -> np.ndarray:
    """SynFlow of each arch on ``shared`` weights: float64 (n,). See the module docstring."""
    array = as_arch_array(archs)
    if len(array) == 0:
        return np.zeros(0)
    sources, _ = flow_statistics(array, shared)
    depth = array.shape[1]
    return sources[:, :depth + 1] @ np.arange(depth + 1, 0, -1, dtype=np.float64)


def express_flow_scores(archs: Sequence[Sequence[int]], shared: SharedWeights) -> np.ndarray:
    """ExpressFlow of each arch on ``shared`` weights: float64 (n,). See the module docstring."""
    array = as_arch_array(archs)
    if len(array) == 0:
        return np.zeros(0)
    sources, trajectory = flow_statistics(array, shared)
    layer_flows = np.cumsum(sources, axis=1)[:, 1:array.shape[1] + 1]  # S_1..S_L
    inverse = 1.0 / trajectory
    layer_weights = inverse / inverse.sum(axis=1, keepdims=True)
    return (layer_weights * array * layer_flows).sum(axis=1)


VECTORISED = {"synflow": synflow_scores, "express_flow": express_flow_scores}
