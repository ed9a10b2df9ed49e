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

So an arch costs forward products on 1 + L + BATCH_ROWS columns (the input's ones vector,
one column per hidden bias — each starts at its own layer and is carried forward by the weights
like the input — and the perturbation rows), and no backward pass. Archs sharing a prefix of
widths share those products: the archs form a prefix tree, and each node's next-layer output is
computed once at the largest width, its children taking the top rows they need. The kernels
(:mod:`trails.tfmem.flow_tree`) walk the tree down to the prefixes of length L − 2, keep those
per set of weights (so that many small calls, as regularized evolution makes, share them), and
compute the last layer only to the rows and columns the scores need.

The weights and the perturbation: :mod:`trails.tfmem.shared_weights` (an arch's weights are
slices of shared draws, so a score depends on (arch, in_features, seed) alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from trails.errors import TrailsError
from trails.tfmem.flow_tree import chunk_statistics
from trails.tfmem.shared_weights import (  # noqa: F401  (re-exported: the public names of this module)
    BATCH_ROWS, EPSILON, TILE, SharedWeights, shared_weights, shared_weights_for)

# archs per pass of flow_statistics; bounds memory: each distinct prefix of length L − 2 holds
# max_width × (BATCH_ROWS + L) float64 and the last layer's products max_width × BATCH_ROWS per
# node — about 60 MB for 4096 archs of 4 layers at width 512
CHUNK_ARCHS = 4096

# BLAS threads while the kernels run. Their products are small (one per tree node: W[:w, :w']
# times 4 to 9 columns), too small to gain from a second thread, and a pool that spins while it
# waits loses badly when the other core is busy (PostgreSQL runs a process per connection).
# Measured on 2 shared cores, 5,000 archs by evolution: 0.3 s of CPU with 1 thread, 0.9 s with 2.
KERNEL_BLAS_THREADS = 1
_THREADPOOLS = ThreadpoolController()


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
    with _THREADPOOLS.limit(limits=KERNEL_BLAS_THREADS, user_api="blas"):
        for begin in range(0, len(archs), CHUNK_ARCHS):
            chosen = order[begin:begin + CHUNK_ARCHS]
            sources[chosen], trajectory[chosen] = chunk_statistics(archs[chosen], shared)
    return sources, trajectory


def as_arch_array(archs: Sequence[Sequence[int]]) -> np.ndarray:
    """``archs`` as an int64 (n, L) array (returned as is when it is one); TrailsError when
    their depths differ."""
    if isinstance(archs, np.ndarray) and archs.dtype == np.int64 and archs.ndim == 2:
        return archs
    if len(archs) == 0:
        return np.zeros((0, 1), dtype=np.int64)
    try:
        array = np.asarray(archs, dtype=np.int64)
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
