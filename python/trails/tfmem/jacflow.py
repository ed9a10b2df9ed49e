"""JacFlow (TRAILS): SynFlow and NASWOT combined.

TRAILS combines the two by their ranks over the archs scored so far; such a score changes as the
set grows, so archs scored in different calls (the rounds of evolution) would not compare. Here
the two are summed on a common, logarithmic scale, which needs no other arch:
score = log(SynFlow) + NASWOT (NASWOT is already a log-determinant). SynFlow is the data-agnostic
one of :mod:`trails.tfmem.synflow` (seeded shared weights), NASWOT is taken on the batch.
"""

from __future__ import annotations

import numpy as np

from trails.tfmem.base import Tfmem
from trails.tfmem.nas_wot import NasWot
from trails.tfmem.synflow import SynFlow


class JacFlow(Tfmem):
    name = "jacflow"
    data_agnostic = False

    def score_many(self, archs, batch, seed=0):
        if batch is None:
            raise ValueError("jacflow is data-dependent: it needs a batch of rows")
        synflow = SynFlow().score_features(archs, batch.in_features, seed)
        with np.errstate(divide="ignore"):
            return np.log(synflow) + NasWot().score_many(archs, batch, seed)
