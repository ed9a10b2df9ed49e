"""SNIP (Lee et al., 2019, "SNIP: single-shot network pruning based on connection sensitivity").

Score = Σ over Linear weights |∂L/∂W ⊙ W|, L the cross-entropy of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trails.tfmem.base import NetworkTfmem, linear_layers


class Snip(NetworkTfmem):
    name = "snip"

    def score_network(self, network, inputs, labels):
        weights = [layer.weight for layer in linear_layers(network)]
        loss = F.cross_entropy(network(inputs), labels)
        gradients = torch.autograd.grad(loss, weights)
        return float(sum((gradient * weight).abs().sum().item() for gradient, weight in zip(gradients, weights)))
