"""The autograd route to SynFlow and ExpressFlow, which the vectorised kernels are checked
against (tests, ``scripts/bench_tfmem_scoring.py``): an ``nn.Module`` holding exactly an arch's
slice of :class:`~trails.tfmem.vectorised.SharedWeights` (weights and biases), scored as TRAILS does (hooks, two
forward passes, one backward pass). Nothing in the package imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trails.errors import TrailsError
from trails.model import build_mlp
from trails.tfmem.express_flow import express_flow_of_network
from trails.tfmem.synflow import synflow_of_network
from trails.tfmem.vectorised import BATCH_ROWS, EPSILON, VECTORISED, SharedWeights


def reference_scores(metric_name: str, arch: Sequence[int], shared: SharedWeights) -> float:
    """The same score by the autograd route: an ``nn.Module`` holding exactly ``arch``'s slice of
    ``shared``, scored as TRAILS does (hooks, two forward passes, one backward pass).

    Raises:
        TrailsError (a ValueError): for a metric other than synflow / express_flow.
    """
    if metric_name not in VECTORISED:
        raise TrailsError(f"no vectorised form of TFMEM {metric_name!r}; valid: {', '.join(VECTORISED)}")
    network = build_mlp(shared.in_features, arch, shared.n_outputs, batch_norm=False).double()
    with torch.no_grad():
        for layer, weight, bias in zip([m for m in network if isinstance(m, torch.nn.Linear)],
                                       shared.arch_weights(arch), shared.arch_biases(arch)):
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
    if metric_name == "synflow":
        return synflow_of_network(network, shared.in_features, BATCH_ROWS)
    return express_flow_of_network(network, torch.from_numpy(shared.perturbation), EPSILON)
