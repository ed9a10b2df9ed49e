"""SynFlow (Tanaka et al., 2020, "Pruning neural networks without any data by iteratively
conserving synaptic flow"), data-agnostic, as TRAILS computes it.

Make every parameter non-negative (|weights| and |biases|) in float64, feed an all-ones input of
``BATCH_ROWS`` rows to the BatchNorm-free, embedding-free MLP, let ``R = Σ outputs``; the score is
``Σ over Linear weights |W ⊙ ∂R/∂W|`` (the biases shape the forward pass; the sum is over the
weights, as in TRAILS and the SynFlow paper).
Many archs are scored by :func:`trails.tfmem.vectorised.synflow_scores`; :func:`synflow_of_network`
is the autograd definition it is checked against.
"""

from __future__ import annotations

import torch
from torch import nn

from trails.tfmem.base import SharedWeightTfmem, absolute_parameters
from trails.tfmem.vectorised import synflow_scores


def synflow_of_network(network: nn.Module, in_features: int, rows: int = 4) -> float:
    """SynFlow of ``network`` (an MLP taking (B, in_features)); its parameters are made
    non-negative in place for the computation and their signs restored afterwards."""
    with absolute_parameters(network):
        network.double()
        output = network(torch.ones(rows, in_features, dtype=torch.float64))
        weights = [layer.weight for layer in network.modules() if isinstance(layer, nn.Linear)]
        gradients = torch.autograd.grad(output.sum(), weights)
        return float(sum((weight * gradient).abs().sum().item() for weight, gradient in zip(weights, gradients)))


class SynFlow(SharedWeightTfmem):
    name = "synflow"
    scores_function = staticmethod(synflow_scores)
