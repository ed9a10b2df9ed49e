"""NASWOT (Mellor et al., 2021, "Neural architecture search without training").

Each row's ReLU activations give it a binary code (unit active or not). The kernel
K[i, j] = Σ over ReLU layers (units − Hamming distance between the codes of rows i and j) =
Σ_l c_i·c_j + (1−c_i)·(1−c_j); score = log det K.

**Singular kernels.** K is the Gram matrix of the rows' codes, so it is positive
semi-definite with integer entries: det K is an integer, either 0 (two rows with the same
code, or any other linear dependence between codes) or at least 1. The score of a singular K
is ``-inf`` (log 0), on every CPU: whether K is singular is decided exactly, never by a
floating-point determinant, whose round-off turns 0 into anything from -inf to a finite
number that depends on the machine. A non-singular K therefore scores ≥ 0.

How: a float64 Cholesky factorisation gives log det K when its smallest pivot is far above
round-off (``TRUSTED_PIVOT``); otherwise the determinant is computed exactly in integers
(fraction-free Gaussian elimination, Bareiss 1968), and its log taken.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trails.tfmem.base import NetworkTfmem, outputs_of

# Smallest Cholesky pivot (a diagonal entry of D in K = L·D·Lᵀ) for which the float64 result
# is used. Round-off in a pivot is about n · ε · max|K| ≈ 32 · 2.2e-16 · 2048 ≈ 1.5e-11 for a
# batch of 32 rows and up to 2,048 units, so a pivot above 1e-3 is certainly not a zero
# pivot, and log det K from it is accurate to about 1e-8 relative.
TRUSTED_PIVOT = 1e-3


def binary_code_kernel(activations: list[torch.Tensor]) -> np.ndarray:
    """K (B, B) int64 from a list of (B, units) activations (a unit is active when > 0)."""
    rows = activations[0].shape[0]
    kernel = np.zeros((rows, rows), dtype=np.int64)
    for activation in activations:
        code = (activation.detach() > 0).numpy().astype(np.int64)
        kernel += code @ code.T + (1 - code) @ (1 - code).T
    return kernel


def integer_determinant(matrix: np.ndarray) -> int:
    """The exact determinant of a square integer matrix (Python int; Bareiss' algorithm)."""
    m = np.array(matrix, dtype=np.int64).astype(object)
    n = m.shape[0]
    sign, previous = 1, 1
    for k in range(n - 1):
        if m[k, k] == 0:
            nonzero = np.nonzero(m[k + 1:, k])[0]
            if len(nonzero) == 0:
                return 0
            swap = k + 1 + int(nonzero[0])
            m[[k, swap]] = m[[swap, k]]
            sign = -sign
        pivot = m[k, k]
        # every division is exact: the entries stay minors of the original matrix
        m[k + 1:, k + 1:] = (m[k + 1:, k + 1:] * pivot - np.outer(m[k + 1:, k], m[k, k + 1:])) // previous
        previous = pivot
    return int(sign * m[n - 1, n - 1])


def log_determinant(kernel: np.ndarray) -> float:
    """log det of a positive semi-definite integer matrix; ``-inf`` when it is singular.

    Raises:
        ValueError: when ``kernel`` is not square.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"the kernel must be square, got shape {kernel.shape}")
    try:
        factor = np.linalg.cholesky(kernel.astype(np.float64))
        pivots = np.diag(factor) ** 2
        if pivots.min() > TRUSTED_PIVOT:
            return float(np.log(pivots).sum())
    except np.linalg.LinAlgError:
        pass
    determinant = integer_determinant(kernel)
    return math.log(determinant) if determinant > 0 else -math.inf


class NasWot(NetworkTfmem):
    name = "nas_wot"

    def score_network(self, network, inputs, labels):
        with torch.no_grad():
            _, activations = outputs_of(network, nn.ReLU, inputs)
        return log_determinant(binary_code_kernel(activations))
