"""NASWOT (Mellor et al., 2021, "Neural architecture search without training").

Each row's ReLU activations give it a binary code (unit active or not). The kernel
K[i, j] = Σ over ReLU layers (units − Hamming distance between the codes of rows i and j) =
Σ_l c_i·c_j + (1−c_i)·(1−c_j); score = log |det K|. Rows with identical codes make K singular
and the score −inf.
"""

from __future__ import annotations

import torch
from torch import nn

from trails.tfmem.base import NetworkTfmem, outputs_of


def binary_code_kernel(activations: list[torch.Tensor]) -> torch.Tensor:
    """K (B, B) float64 from a list of (B, units) activations."""
    rows = activations[0].shape[0]
    kernel = torch.zeros(rows, rows, dtype=torch.float64)
    for activation in activations:
        code = (activation.detach() > 0).double()
        kernel += code @ code.T + (1.0 - code) @ (1.0 - code).T
    return kernel


class NasWot(NetworkTfmem):
    name = "nas_wot"

    def score_network(self, network, inputs, labels):
        with torch.no_grad():
            _, activations = outputs_of(network, nn.ReLU, inputs)
        return float(torch.linalg.slogdet(binary_code_kernel(activations)).logabsdet)
