"""Jacobian covariance (Mellor et al., 2020, first version of "Neural architecture search
without training").

J (B × D) holds each row's gradient of its summed logits with respect to its input (the
embedded row); C = corrcoef of J's rows; with eigenvalues λ of C and k = 1e-5,
score = −Σ (log(λ + k) + 1/(λ + k)). Uncorrelated rows (C ≈ I) score highest. A row with a
constant gradient makes C undefined; the score is then −inf.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from trails.tfmem.base import NetworkTfmem

K = 1e-5


def correlation_score(jacobian: np.ndarray) -> float:
    """−Σ (log(λ + k) + 1/(λ + k)) over the eigenvalues λ of corrcoef(jacobian rows)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(jacobian)
    if not np.all(np.isfinite(correlation)):
        return -math.inf
    eigenvalues = np.linalg.eigvalsh(correlation)
    return float(-np.sum(np.log(eigenvalues + K) + 1.0 / (eigenvalues + K)))


class JacobCov(NetworkTfmem):
    name = "jacob_cov"

    def score_network(self, network, inputs, labels):
        inputs = inputs.detach().clone().requires_grad_(True)
        (jacobian,) = torch.autograd.grad(network(inputs).sum(), inputs)
        return correlation_score(jacobian.numpy())
