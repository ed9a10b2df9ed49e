"""Gradient norm (Abdelfattah et al., 2021, "Zero-cost proxies for lightweight NAS").

Score = Σ over Linear layers ‖∂L/∂W‖_F (per-layer Frobenius norms, summed, as TRAILS), L the
cross-entropy of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trails.tfmem.base import NetworkTfmem, linear_layers


class GradNorm(NetworkTfmem):
    name = "grad_norm"

    def score_network(self, network, inputs, labels):
        weights = [layer.weight for layer in linear_layers(network)]
        loss = F.cross_entropy(network(inputs), labels)
        gradients = torch.autograd.grad(loss, weights)
        return float(sum(torch.linalg.norm(gradient).item() for gradient in gradients))
