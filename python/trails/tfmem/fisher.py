"""Fisher (Theis et al., 2018, "Faster gaze prediction with dense networks and Fisher pruning";
as in Abdelfattah et al.'s zero-cost proxies, and TRAILS).

For each Linear layer with output ``a`` (B, units) and ``g = ∂L/∂a``, channel k gets
Δ_k = ½ · mean over rows of (a_k · g_k)²; as in TRAILS, each channel's value is spread over the
layer's fan-in weights before summing, so score = Σ_layers fan_in · Σ_k Δ_k.
L is the cross-entropy of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trails.tfmem.base import NetworkTfmem, linear_layers, outputs_of


class Fisher(NetworkTfmem):
    name = "fisher"

    def score_network(self, network, inputs, labels):
        output, layer_outputs = outputs_of(network, nn.Linear, inputs)
        gradients = torch.autograd.grad(F.cross_entropy(output, labels), layer_outputs)
        total = 0.0
        for layer, activation, gradient in zip(linear_layers(network), layer_outputs, gradients):
            per_channel = 0.5 * (activation.detach() * gradient).pow(2).mean(dim=0)
            total += layer.in_features * per_channel.sum().item()
        return float(total)
