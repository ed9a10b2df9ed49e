"""Benchmark: ExpressFlow scoring, autograd reference vs the vectorised numpy path.

Prints, measured side by side in one run on the default search space:
  * the reference (one nn.Module per arch, autograd, as TRAILS scores) on a subset, ms/arch,
    extrapolated to all the archs;
  * the vectorised path on the same archs (median of repeats), ms/arch and total;
  * the ratio;
  * the vectorised path on the whole space (160,000 archs by default).

Usage: /opt/trails-venv/bin/python scripts/bench_tfmem_scoring.py [--archs 5000] [--subset 200]
       [--in-features 100] [--seed 0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from trails.space import SearchSpace
from trails.tfmem.flow_reference import reference_scores
from trails.tfmem.vectorised import SharedWeights, express_flow_scores


def seconds(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs, after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=5000)
    parser.add_argument("--subset", type=int, default=200, help="archs scored by the slow reference")
    parser.add_argument("--in-features", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.subset <= args.archs or args.in_features < 1 or args.repeats < 1:
        parser.error("need 1 <= --subset <= --archs, --in-features >= 1 and --repeats >= 1")

    space = SearchSpace()
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    subset = archs[:args.subset]
    shared = SharedWeights(args.in_features, space.layers, space.max_width, args.seed)
    print(f"space: {space.layers} layers x {len(space.widths)} widths ({space.size:,} archs); "
          f"in_features={args.in_features}; torch threads={torch.get_num_threads()}")

    start = time.perf_counter()
    reference = np.array([reference_scores("express_flow", arch, shared) for arch in subset])
    reference_ms = (time.perf_counter() - start) / len(subset) * 1e3
    fast_subset = express_flow_scores(subset, shared)
    worst = float(np.max(np.abs(fast_subset - reference) / np.abs(reference)))

    vectorised_s = seconds(lambda: express_flow_scores(archs, shared), args.repeats)
    vectorised_ms = vectorised_s / len(archs) * 1e3
    every_arch = list(space.enumerate())
    space_s = seconds(lambda: express_flow_scores(every_arch, shared), max(1, args.repeats // 2))

    print(f"reference  (nn.Module + autograd, {len(subset)} archs): {reference_ms:8.4f} ms/arch "
          f"-> {reference_ms * len(archs) / 1e3:7.2f} s for {len(archs):,} (extrapolated)")
    print(f"vectorised (numpy, {len(archs):,} archs):            {vectorised_ms:8.4f} ms/arch "
          f"-> {vectorised_s:7.3f} s for {len(archs):,}")
    print(f"speed-up: {reference_ms / vectorised_ms:,.0f}x   (max relative difference on the subset: {worst:.1e})")
    print(f"vectorised, whole space ({len(every_arch):,} archs): {space_s:.3f} s "
          f"({space_s / len(every_arch) * 1e3:.4f} ms/arch)")


if __name__ == "__main__":
    main()
