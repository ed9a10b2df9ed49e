"""GraSP (Wang et al., 2020, "Picking winning tickets before training by preserving gradient flow").

With g = ∂L/∂W over the Linear weights (a constant) and H the Hessian of L in those weights,
score = −Σ W ⊙ (H g), L the cross-entropy of the batch. ``H g`` is a Hessian-vector product:
the gradient of ⟨∂L/∂W, g⟩.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trails.tfmem.base import NetworkTfmem, linear_layers


class Grasp(NetworkTfmem):
    name = "grasp"

    def score_network(self, network, inputs, labels):
        weights = [layer.weight for layer in linear_layers(network)]
        loss = F.cross_entropy(network(inputs), labels)
        gradients = torch.autograd.grad(loss, weights, create_graph=True)
        fixed = [gradient.detach() for gradient in gradients]
        inner = sum((gradient * constant).sum() for gradient, constant in zip(gradients, fixed))
        hessian_gradient = torch.autograd.grad(inner, weights)
        return float(-sum((weight * product).sum().item() for weight, product in zip(weights, hessian_gradient)))
