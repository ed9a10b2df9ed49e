"""NTK condition number (Chen et al., 2021, TE-NAS), negated.

κ = λ_max / λ_min of the empirical NTK Θ of :mod:`trails.tfmem.ntk_trace`. A well-conditioned
NTK (small κ) trains better, so the score is −κ: higher is better, as for every TFMEM here.
A singular Θ (λ_min ≤ 0) scores −inf.
"""

from __future__ import annotations

import math

import torch

from trails.tfmem.base import NetworkTfmem
from trails.tfmem.ntk_trace import empirical_ntk


class NtkCondNum(NetworkTfmem):
    name = "ntk_cond_num"

    def score_network(self, network, inputs, labels):
        eigenvalues = torch.linalg.eigvalsh(empirical_ntk(network, inputs, labels))
        smallest, largest = eigenvalues[0].item(), eigenvalues[-1].item()
        if smallest <= 0.0:
            return -math.inf
        return -largest / smallest
