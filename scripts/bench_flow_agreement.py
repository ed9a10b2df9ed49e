"""Benchmark: do our vectorised SynFlow / ExpressFlow rank archs as TRAILS' definition does?

TRAILS scores one freshly initialised ``nn.Module`` per arch: every parameter — weights *and
biases* — made non-negative, float64, an all-ones input of 4 rows, hooks on the ReLUs, a
perturbed forward pass (ExpressFlow's trajectory lengths) and one backward pass. This script
re-implements that definition independently (plain torch below, no code of ``trails.tfmem``),
with PyTorch's default initialisation and a fresh perturbation per model, and prints the
Spearman rank correlation over random archs of the space (frappe's input width by default:
10 fields × 10 numbers per field):

* independent, seed a vs independent, seed b  (how far the definition itself is from a ranking);
* ours (``trails.tfmem``, biases included) vs independent;
* ours without biases (the former definition: the biases zeroed) vs independent.

Target (issue #7): Spearman(ours, independent ExpressFlow with biases) ≥ 0.99 on 1,000 archs.

Usage: /opt/trails-venv/bin/python scripts/bench_flow_agreement.py [--archs 1000] [--in-features 100]
       [--seeds 0 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from trails.space import SearchSpace
from trails.tfmem.vectorised import SharedWeights, express_flow_scores, synflow_scores


def independent_flows(arch: tuple[int, ...], in_features: int, seed: int, rows: int = 4,
                      epsilon: float = 1e-5) -> tuple[float, float]:
    """(SynFlow, ExpressFlow) of ``arch`` by TRAILS' definition, on a model initialised from ``seed``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = in_features
    for width in arch:
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 2))
    network = nn.Sequential(*layers).double()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.abs_()
    perturbation = torch.randn(rows, in_features, dtype=torch.float64)
    activations: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: activations.append(out))
             for m in network if isinstance(m, nn.ReLU)]
    ones = torch.ones(rows, in_features, dtype=torch.float64)
    output = network(ones)
    clean = list(activations)
    activations.clear()
    with torch.no_grad():
        network(ones + epsilon * perturbation)
    moved = list(activations)
    for hook in hooks:
        hook.remove()
    weights = [m.weight for m in network if isinstance(m, nn.Linear)]
    gradients = torch.autograd.grad(output.sum(), clean + weights)
    activation_grads, weight_grads = gradients[:len(clean)], gradients[len(clean):]
    synflow = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, weight_grads))
    inverse = [epsilon / float(torch.linalg.norm(p - z)) for z, p in zip(clean, moved)]
    omega = [value / sum(inverse) for value in inverse]
    express = sum(o * z.shape[1] * float((z * g.abs()).sum()) for o, z, g in zip(omega, clean, activation_grads))
    return synflow, express


def without_biases(shared: SharedWeights) -> SharedWeights:
    """A copy of ``shared`` with every bias magnitude 0 (the former, bias-free definition)."""
    copy = SharedWeights(shared.in_features, shared.layers, shared.max_width, shared.seed, shared.n_outputs)
    copy.hidden_bias = [np.zeros_like(bias) for bias in copy.hidden_bias]
    copy.output_bias = np.zeros_like(copy.output_bias)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=1000)
    parser.add_argument("--in-features", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 1], help="two seeds of the independent models")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.archs < 3 or args.in_features < 1 or args.threads < 1:
        parser.error("need --archs >= 3, --in-features >= 1, --threads >= 1")
    torch.set_num_threads(args.threads)

    space = SearchSpace()
    rng = np.random.default_rng(1234)
    archs = [space.sample(rng) for _ in range(args.archs)]
    started = time.perf_counter()
    independent = {seed: np.array([independent_flows(arch, args.in_features, 1_000_003 * seed + i)
                                   for i, arch in enumerate(archs)]) for seed in args.seeds}
    independent_s = time.perf_counter() - started
    shared = SharedWeights(args.in_features, space.layers, space.max_width, 0)
    started = time.perf_counter()
    ours = {"synflow": synflow_scores(archs, shared), "express_flow": express_flow_scores(archs, shared)}
    ours_s = time.perf_counter() - started
    bias_free = without_biases(shared)
    former = {"synflow": synflow_scores(archs, bias_free), "express_flow": express_flow_scores(archs, bias_free)}

    first, second = args.seeds
    print(f"{args.archs} random archs of the space ({space.size:,}), in_features={args.in_features}; "
          f"independent autograd {independent_s:.1f} s for {2 * args.archs} models, ours {ours_s * 1e3:.0f} ms")
    print(f"{'metric':<13} {'indep. vs indep.':>17} {'ours vs indep.':>15} {'ours w/o biases vs indep.':>26}")
    for column, metric in enumerate(("synflow", "express_flow")):
        a, b = independent[first][:, column], independent[second][:, column]

        def rho(x, y):
            return spearmanr(x, y).statistic

        mixed = (rho(ours[metric], a) + rho(ours[metric], b)) / 2
        mixed_former = (rho(former[metric], a) + rho(former[metric], b)) / 2
        print(f"{metric:<13} {rho(a, b):>17.4f} {mixed:>15.4f} {mixed_former:>26.4f}")
    print("(ours vs indep.: mean over the two independent seeds; target for express_flow: >= 0.99)")


if __name__ == "__main__":
    main()
