"""The prefix-tree kernels behind :func:`trails.tfmem.vectorised.flow_statistics`.

An arch of L layers is a path in the tree of width prefixes. ``z_l`` of a prefix (the output of
its last layer, on the columns: BATCH_ROWS perturbation rows, the input's ones vector, one column
per hidden bias so far) depends on the prefix only, and a prefix's *block* is the next layer's
output at the largest width, ``W_{d+1}[:, :w_d] z_d / √w_d`` (plus the new bias column): each
child of width w takes its top w rows as its own ``z``.

* **The upper tree** (prefixes of length ≤ L − 2): walked depth by depth (:func:`_walk`),
  siblings' products as running sums over column blocks of the next weight matrix
  (:func:`_next_layer`). A walked prefix's block and trajectory lengths are kept in a
  :class:`PrefixMemo` per :class:`SharedWeights` (at most ``MEMO_BYTES``), so that scoring in
  many small calls — regularized evolution proposes ~100 children a round — does not redo
  the layers its archs share with every earlier call (400 prefixes of length 2 in the default
  space, 13 MB at width 512).
* **The last two layers** (:func:`_last_layers`): of ``z_L`` only three things are needed —
  ``τ_L = ‖W_L[:w_L, :w_{L−1}] P‖_F / √w_{L−1}`` (P the perturbation columns of ``z_{L−1}``),
  computed to the rows the arch keeps and no further; and the sources ``c_m``, which are dot
  products of ``z_{L−1}`` with ``U[w_L] = Σ_{i<w_L} (1ᵀW_out)_i W_L[i, :]``, a prefix sum over
  rows computed once per SharedWeights. No product runs on the bias/ones columns of the last
  layer, nor on rows past the widest width a node's children keep.

Results agree with any other grouping of the same archs to rounding (≈ 1e-15 relative): a score
is a function of (arch, weights) alone.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from trails.tfmem.shared_weights import BATCH_ROWS, SharedWeights

# bytes of prefix blocks kept per SharedWeights (the default space at width 512 needs 13 MB)
MEMO_BYTES = 32 * 2**20


class PrefixMemo:
    """What was computed once for one :class:`SharedWeights` and serves every later call.

    Attributes:
        blocks: prefix (tuple of widths) → (block (max_width, BATCH_ROWS + 2 + len(prefix)),
            trajectory lengths τ_1..τ_len(prefix)); kept while their bytes fit ``MEMO_BYTES``.
        output_weighting: L → (U, bias_terms), the last layer's prefix sums over rows
            (:func:`_output_weighting`).
    """

    def __init__(self, max_bytes: int = MEMO_BYTES):
        self.blocks: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.output_weighting: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.max_bytes, self.bytes = max_bytes, 0

    def keep(self, prefix: tuple, block: np.ndarray, trajectory: np.ndarray) -> None:
        """Remember ``prefix``'s block while the memo has room (first come, first kept)."""
        size = block.nbytes + trajectory.nbytes
        if prefix not in self.blocks and self.bytes + size <= self.max_bytes:
            self.blocks[prefix] = (np.ascontiguousarray(block), trajectory.copy())
            self.bytes += size


_MEMOS: "weakref.WeakKeyDictionary[SharedWeights, PrefixMemo]" = weakref.WeakKeyDictionary()


def memo_of(shared: SharedWeights) -> PrefixMemo:
    """The :class:`PrefixMemo` of ``shared`` (created empty on first use; freed with it)."""
    memo = _MEMOS.get(shared)
    if memo is None:
        memo = _MEMOS[shared] = PrefixMemo()
    return memo


def chunk_statistics(archs: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """Sources ``c`` (n, L + 2) and trajectory lengths ``τ`` (n, L) of ``archs`` ((n, L) int64,
    checked against ``shared``), in the order given; see
    :func:`trails.tfmem.vectorised.flow_statistics` for their meaning."""
    depth_count = archs.shape[1]
    if depth_count == 1:
        return _single_layer(archs[:, 0], shared)
    parent_of_arch, prefixes = _distinct_prefixes(archs[:, :depth_count - 2], shared.max_width + 1)
    blocks, upper_trajectory = _prefix_outputs(prefixes, shared)
    sources, last_trajectory = _last_layers(blocks, parent_of_arch, archs[:, -2], archs[:, -1], shared)
    trajectory = np.empty(archs.shape)
    trajectory[:, :depth_count - 2] = upper_trajectory[parent_of_arch]
    trajectory[:, depth_count - 2:] = last_trajectory
    return sources, trajectory


def _distinct_prefixes(prefix_widths: np.ndarray, radix: int) -> tuple[np.ndarray, np.ndarray]:
    """(index of each row's prefix, the distinct prefixes (k, d)) of ``prefix_widths`` (n, d)."""
    index = np.zeros(len(prefix_widths), dtype=np.int64)
    for depth in range(prefix_widths.shape[1]):
        _, index = np.unique(index * radix + prefix_widths[:, depth], return_inverse=True)
    _, first = np.unique(index, return_index=True)
    return index, prefix_widths[first]


def _root_block(shared: SharedWeights) -> np.ndarray:
    """``z_1`` at the largest width: (max_width, BATCH_ROWS + 2) — perturbation, ones, b_1
    (memoised as the block of the empty prefix)."""
    memo = memo_of(shared)
    if () in memo.blocks:
        return memo.blocks[()][0]
    root_input = np.empty((shared.in_features, BATCH_ROWS + 1))
    root_input[:, :BATCH_ROWS] = shared.perturbation.T
    root_input[:, BATCH_ROWS] = 1.0
    block = np.empty((shared.max_width, BATCH_ROWS + 2))
    block[:, :-1] = shared.hidden[0] @ root_input / math.sqrt(shared.in_features)
    block[:, -1] = shared.hidden_bias[0] / math.sqrt(shared.in_features)
    memo.keep((), block, np.empty(0))
    return block


def _prefix_outputs(prefixes: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """Blocks (k, max_width, BATCH_ROWS + 2 + d) and τ_1..τ_d (k, d) of the distinct prefixes
    ``prefixes`` (k, d), from the memo where it has them, walked (and memoised) otherwise."""
    memo = memo_of(shared)
    keys = [tuple(row) for row in prefixes.tolist()]
    found = [memo.blocks.get(key) for key in keys]
    missing = [position for position, entry in enumerate(found) if entry is None]
    if missing:
        blocks, trajectory = _walk(prefixes[missing], shared)
        for row, position in enumerate(missing):
            found[position] = (blocks[row], trajectory[row])
            memo.keep(keys[position], blocks[row], trajectory[row])
    return np.stack([block for block, _ in found]), np.stack([lengths for _, lengths in found])


def _walk(prefixes: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_prefix_outputs` computed: the tree of ``prefixes`` (k distinct rows, (k, d))
    walked depth by depth from the root block."""
    n_prefixes, depth_count = prefixes.shape
    radix = shared.max_width + 1
    produced = _root_block(shared)
    parent_of_prefix = np.zeros(n_prefixes, dtype=np.int64)
    trajectory = np.empty((n_prefixes, depth_count))
    for depth in range(depth_count):
        columns = BATCH_ROWS + 2 + depth  # perturbation, input, biases of layers 1..depth + 1
        node_keys, node_of_prefix = np.unique(parent_of_prefix * radix + prefixes[:, depth], return_inverse=True)
        node_parent, node_width = np.divmod(node_keys, radix)
        by_parent = produced.reshape(produced.shape[0], -1, columns)
        squares = np.cumsum(np.einsum("rpc,rpc->rp", by_parent[:, :, :BATCH_ROWS], by_parent[:, :, :BATCH_ROWS]),
                            axis=0)
        trajectory[:, depth] = np.sqrt(squares[node_width - 1, node_parent])[node_of_prefix]
        produced = _next_layer(produced, node_parent, node_width, shared.hidden[depth + 1],
                               shared.hidden_bias[depth + 1], columns)
        parent_of_prefix = node_of_prefix
    blocks = produced.reshape(produced.shape[0], -1, BATCH_ROWS + 2 + depth_count).transpose(1, 0, 2)
    return blocks[parent_of_prefix], trajectory


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


def _single_layer(widths: np.ndarray, shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """:func:`chunk_statistics` of one-layer archs: sums over the top rows of the root block."""
    root = _root_block(shared)
    squares = np.cumsum(np.einsum("rc,rc->r", root[:, :BATCH_ROWS], root[:, :BATCH_ROWS]))
    weighted = np.cumsum(shared.output_column_sums[:, None] * root[:, BATCH_ROWS:], axis=0)  # ones, b_1
    sources = np.empty((len(widths), 3))
    sources[:, :2] = weighted[widths - 1] / np.sqrt(widths)[:, None]
    sources[:, 2] = shared.output_bias.sum() / np.sqrt(widths)
    return BATCH_ROWS * sources, np.sqrt(squares[widths - 1])[:, None]


def _output_weighting(shared: SharedWeights, depth_count: int) -> tuple[np.ndarray, np.ndarray]:
    """For the last hidden layer L = ``depth_count``: ``U`` (max_width, max_width) with
    ``U[w − 1] = Σ_{i<w} s_i · hidden[L−1][i, :]`` and ``bias_terms[w − 1] = Σ_{i<w} s_i ·
    hidden_bias[L−1][i]`` (s = the output layer's column sums, all unscaled); memoised."""
    memo = memo_of(shared)
    if depth_count not in memo.output_weighting:
        sums = shared.output_column_sums
        memo.output_weighting[depth_count] = (
            np.cumsum(sums[:, None] * shared.hidden[depth_count - 1], axis=0),
            np.cumsum(sums * shared.hidden_bias[depth_count - 1]))
    return memo.output_weighting[depth_count]


def _last_layers(blocks: np.ndarray, parent: np.ndarray, previous_width: np.ndarray, width: np.ndarray,
                 shared: SharedWeights) -> tuple[np.ndarray, np.ndarray]:
    """Sources (n, L + 2) and (τ_{L−1}, τ_L) (n, 2) of archs whose (L−2)-prefix has block
    ``blocks[parent]`` (``z_{L−1}`` at the largest width), with ``w_{L−1} = previous_width`` and
    ``w_L = width``.

    Archs sharing (parent, w_{L−1}) — a node, whose ``z_{L−1}`` is the parent block's top
    w_{L−1} rows — share one product ``W_L[:r, :w_{L−1}] P`` (P: z's perturbation columns, r:
    the widest w_L among them), and one product with the rows of U their w_L select. One
    product per node, in a loop: measured faster than running sums over column blocks of W_L
    for both a few archs per node (evolution's rounds) and 20 (the whole space)."""
    depth_count = blocks.shape[2] - BATCH_ROWS  # the block carries ones + L − 1 biases
    weight = shared.hidden[depth_count - 1]
    weighting, bias_terms = _output_weighting(shared, depth_count)
    perturbed = blocks[:, :, :BATCH_ROWS]
    row_squares = np.cumsum(np.einsum("kic,kic->ki", perturbed, perturbed), axis=1)
    trajectory = np.empty((len(width), 2))
    trajectory[:, 0] = np.sqrt(row_squares[parent, previous_width - 1])
    last_squares = np.empty(len(width))
    sources = np.empty((len(width), depth_count + 2))
    order = np.lexsort((width, previous_width, parent))
    node_starts = np.flatnonzero((np.diff(parent[order]) != 0) | (np.diff(previous_width[order]) != 0)) + 1
    for archs, node_parent, node_width in zip(np.split(order, node_starts),
                                              parent[order[np.r_[0, node_starts]]].tolist(),
                                              previous_width[order[np.r_[0, node_starts]]].tolist()):
        kept = width[archs]  # ascending: the last is the widest
        z = blocks[node_parent, :node_width]
        product = weight[:kept[-1], :node_width] @ z[:, :BATCH_ROWS]
        if len(archs) == 1:
            last_squares[archs] = np.vdot(product, product)
        else:
            last_squares[archs] = np.cumsum(np.einsum("rc,rc->r", product, product))[kept - 1]
        sources[archs, :depth_count] = weighting[kept - 1, :node_width] @ z[:, BATCH_ROWS:]
    trajectory[:, 1] = np.sqrt(last_squares / previous_width)
    sources[:, depth_count] = bias_terms[width - 1]
    sources[:, :depth_count + 1] /= np.sqrt(previous_width)[:, None]
    sources[:, depth_count + 1] = shared.output_bias.sum()
    return BATCH_ROWS * sources / np.sqrt(width)[:, None], trajectory
