"""ExpressFlow (TRAILS' own TFMEM), data-agnostic.

On the BatchNorm-free, embedding-free MLP with every parameter made non-negative (|weights| and
|biases|, as TRAILS) in float64 and an all-ones input of
``BATCH_ROWS`` rows, with ``R = Σ outputs`` and ``z_l`` the output of the l-th ReLU:

    ExpressFlow = Σ_l ω_l · width_l · Σ (z_l ⊙ |∂R/∂z_l|)

where ``ω_l ∝ 1 / τ_l`` (normalised to sum 1) and ``τ_l = ‖z_l(x + εΔ) − z_l(x)‖_F / ε`` is the
trajectory length of layer ``l`` under the input perturbation ``εΔ`` (ε = 1e-5, Δ standard normal).
Deeper layers, whose outputs move more, weigh less; wider layers weigh more.

Many archs are scored by :func:`trails.tfmem.vectorised.express_flow_scores`, with Δ fixed per
seed (see that module); :func:`express_flow_of_network` is the autograd definition (as TRAILS'
hook-based code) it is checked against.
"""

from __future__ import annotations

import torch
from torch import nn

from trails.tfmem.base import SharedWeightTfmem, absolute_parameters
from trails.tfmem.vectorised import express_flow_scores


def express_flow_of_network(network: nn.Module, perturbation: torch.Tensor, epsilon: float = 1e-5) -> float:
    """ExpressFlow of ``network`` for the input perturbation ``epsilon · perturbation``
    (``perturbation``: (rows, in_features); the all-ones input has the same shape). Parameters are
    made non-negative for the computation and their signs restored afterwards."""
    relus = [module for module in network.modules() if isinstance(module, nn.ReLU)]
    captured: list[torch.Tensor] = []
    handles = [relu.register_forward_hook(lambda _m, _i, output: captured.append(output)) for relu in relus]
    try:
        with absolute_parameters(network):
            network.double()
            ones = torch.ones(perturbation.shape, dtype=torch.float64)
            output = network(ones)
            originals = captured[:]
            captured.clear()
            with torch.no_grad():
                network(ones + epsilon * perturbation.double())
            perturbed = captured[:]
            trajectory = [torch.linalg.norm(p - o).item() / epsilon for o, p in zip(originals, perturbed)]
            gradients = torch.autograd.grad(output.sum(), originals)
            inverse = [1.0 / length for length in trajectory]
            layer_weights = [value / sum(inverse) for value in inverse]
            total = sum(weight * (z * g.abs()).sum().item() * z.shape[1]
                        for weight, z, g in zip(layer_weights, originals, gradients))
            return float(total)
    finally:
        for handle in handles:
            handle.remove()


class ExpressFlow(SharedWeightTfmem):
    name = "express_flow"
    scores_function = staticmethod(express_flow_scores)
