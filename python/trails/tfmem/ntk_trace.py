"""Trace of the empirical neural tangent kernel on the batch (as TE-NAS / TRAILS define the NTK).

Row i's output is its true-class logit f_i = logits[i, label_i]; J (B × P) holds ∂f_i/∂θ over
the Linear layers' weights and biases; Θ = J Jᵀ (B × B); score = trace Θ = Σ_i ‖∂f_i/∂θ‖².
"""

from __future__ import annotations

import torch

from trails.tfmem.base import NetworkTfmem, linear_layers


def empirical_ntk(network, inputs, labels) -> torch.Tensor:
    """Θ = J Jᵀ, float64 (B, B): one backward pass per row (BatchNorm couples the rows, so the
    per-row gradients are taken exactly, through the whole batch)."""
    parameters = [p for layer in linear_layers(network) for p in layer.parameters()]
    logits = network(inputs)
    chosen = logits[torch.arange(len(labels)), labels]
    rows = []
    for index in range(len(chosen)):
        gradients = torch.autograd.grad(chosen[index], parameters, retain_graph=index + 1 < len(chosen))
        rows.append(torch.cat([gradient.reshape(-1) for gradient in gradients]))
    jacobian = torch.stack(rows)
    return jacobian @ jacobian.T


class NtkTrace(NetworkTfmem):
    name = "ntk_trace"

    def score_network(self, network, inputs, labels):
        return float(torch.trace(empirical_ntk(network, inputs, labels)).item())
