"""Weight norm (TRAILS' ``weight_norm``): Σ over Linear layers ‖W‖_F at initialisation.

It reads no data, so it is data-agnostic: the score depends on (arch, in_features, seed) only.
The network is the same embedding + BatchNorm model the data-dependent TFMEMs initialise.
"""

from __future__ import annotations

import numpy as np
import torch

from trails.tfmem.base import DataAgnosticTfmem, initialised_network, linear_layers


class WeightNorm(DataAgnosticTfmem):
    name = "weight_norm"

    def score_features(self, archs, in_features, seed=0, n_outputs: int = 2):
        scores = np.empty(len(archs))
        for position, arch in enumerate(archs):
            network = initialised_network(tuple(arch), in_features, n_outputs, seed)
            with torch.no_grad():
                scores[position] = sum(torch.linalg.norm(layer.weight).item() for layer in linear_layers(network))
        return scores
