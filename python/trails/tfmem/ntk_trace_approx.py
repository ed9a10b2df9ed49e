"""Approximate NTK trace (Shu et al., 2022, NASI, as TRAILS computes it).

NASI replaces the per-row Jacobian by the gradient of the batch loss: ‖Θ‖_tr ≈ ‖∂L/∂θ‖². As in
TRAILS, score = mean over parameter tensors θ_t (all of the network's, BatchNorm included) of
‖∂L/∂θ_t‖², L the cross-entropy of the batch: one backward pass instead of B.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trails.tfmem.base import NetworkTfmem


class NtkTraceApprox(NetworkTfmem):
    name = "ntk_trace_approx"

    def score_network(self, network, inputs, labels):
        parameters = list(network.parameters())
        gradients = torch.autograd.grad(F.cross_entropy(network(inputs), labels), parameters)
        return float(sum(gradient.pow(2).sum().item() for gradient in gradients) / len(gradients))
