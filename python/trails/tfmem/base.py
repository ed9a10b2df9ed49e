"""What every TFMEM offers, and the shared machinery of the data-dependent ones.

Every TFMEM is an object with ``name``, ``data_agnostic`` and

* ``score(arch, batch, seed) -> float``
* ``score_many(archs, batch, seed) -> np.ndarray`` (float64, one score per arch, same order)

Higher is better for every TFMEM here. ``seed`` fixes every random draw (network weights,
embedding table, perturbations), so a score is a function of (arch, batch, seed) alone and
does not depend on which other archs are scored in the same call.

Data-agnostic TFMEMs (:class:`DataAgnosticTfmem`) look only at the input width; they also offer
``score_features(archs, in_features, seed)``. Data-dependent ones (:class:`NetworkTfmem`) build,
per arch, the embedding + BatchNorm model of :mod:`trails.model` (float64, train mode,
weights from ``seed``) and score it on the batch. The embedding is a fixed random table built
once per (n_ids, embedding_dim, seed) and the batch is embedded once per ``score_many`` call:
the metrics are taken over the MLP's parameters; the embedding is input, not scored parameters
(TRAILS' layer-wise metrics look at Linear layers only, so this changes none of them).
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from trails.model import build_mlp, init_embedding_table
from trails.tfmem.batch import TfmemBatch
from trails.tfmem.vectorised import as_arch_array, shared_weights_for

Arch = tuple[int, ...]

# Distinct purposes draw from distinct random streams derived from the one user seed.
_EMBEDDING_STREAM = 1
_NETWORK_STREAM = 2


def derived_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one purpose (``stream``) derived from the user's ``seed`` ≥ 0."""
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(2, np.uint64)[0] >> 1)


class Tfmem(ABC):
    """A training-free model evaluation metric (see the module docstring for the contract)."""

    name: str = ""
    data_agnostic: bool = False

    def score(self, arch: Sequence[int], batch: TfmemBatch | None, seed: int = 0) -> float:
        """The score of one arch."""
        return float(self.score_many([tuple(arch)], batch, seed)[0])

    @abstractmethod
    def score_many(self, archs: Sequence[Sequence[int]], batch: TfmemBatch | None, seed: int = 0) -> np.ndarray:
        """Scores of ``archs`` (float64 array, same order)."""

    def __repr__(self) -> str:
        return f"<TFMEM {self.name}>"


class DataAgnosticTfmem(Tfmem):
    """A TFMEM that needs only the input width: ``batch`` serves for ``batch.in_features``."""

    data_agnostic = True

    def score_many(self, archs, batch, seed=0):
        if batch is None:
            raise ValueError(f"{self.name} needs the input width: pass a batch, or call score_features")
        return self.score_features(archs, batch.in_features, seed)

    @abstractmethod
    def score_features(self, archs: Sequence[Sequence[int]], in_features: int, seed: int = 0,
                       n_outputs: int = 2) -> np.ndarray:
        """Scores of ``archs`` for an MLP of ``in_features`` inputs and ``n_outputs`` outputs
        (the task's: 2 binary, one per class, 1 regression)."""


class SharedWeightTfmem(DataAgnosticTfmem):
    """A data-agnostic TFMEM scored by a vectorised function of (archs, SharedWeights)
    (:mod:`trails.tfmem.vectorised`); subclasses name it in ``scores_function``."""

    scores_function = None  # e.g. trails.tfmem.vectorised.synflow_scores

    def score_features(self, archs, in_features, seed=0, n_outputs=2):
        array = as_arch_array(archs)
        if len(array) == 0:
            return np.zeros(0)
        return type(self).scores_function(array, shared_weights_for(array, in_features, seed, n_outputs))


@contextlib.contextmanager
def absolute_parameters(network: nn.Module):
    """Make ``network``'s parameters non-negative in place for the ``with`` block, then
    restore their signs (SynFlow and ExpressFlow score on |weights|)."""
    parameters = list(network.parameters())
    signs = [torch.sign(parameter.detach()) for parameter in parameters]
    with torch.no_grad():
        for parameter in parameters:
            parameter.abs_()
    try:
        yield network
    finally:
        with torch.no_grad():
            for parameter, sign in zip(parameters, signs):
                parameter.mul_(sign)


class NetworkTfmem(Tfmem):
    """A data-dependent TFMEM: scores each arch's freshly initialised network on the batch."""

    data_agnostic = False

    def score_many(self, archs, batch, seed=0):
        if batch is None:
            raise ValueError(f"{self.name} is data-dependent: it needs a batch of rows")
        inputs = embed_batch(batch, seed)
        labels = batch.labels
        scores = np.empty(len(archs), dtype=np.float64)
        for position, arch in enumerate(archs):
            network = initialised_network(arch, batch.in_features, batch.n_classes, seed)
            scores[position] = self.score_network(network, inputs, labels)
        return scores

    @abstractmethod
    def score_network(self, network: nn.Sequential, inputs: torch.Tensor, labels: torch.Tensor) -> float:
        """The score of ``network`` (an MLP from :func:`initialised_network`) on the embedded
        ``inputs`` (float64 (B, in_features)) with ``labels`` (long (B,))."""


@functools.lru_cache(maxsize=4)
def embedding_table(n_ids: int, embedding_dim: int, seed: int) -> torch.Tensor:
    """The fixed random embedding table (n_ids, embedding_dim), float32, for ``seed``."""
    generator = torch.Generator().manual_seed(derived_seed(seed, _EMBEDDING_STREAM))
    return init_embedding_table(torch.empty(n_ids, embedding_dim), generator)


def embed_batch(batch: TfmemBatch, seed: int) -> torch.Tensor:
    """The batch as MLP input: ``table[ids] × values`` flattened, float64 (B, in_features)."""
    table = embedding_table(batch.n_ids, batch.embedding_dim, int(seed))
    embedded = table[batch.ids].double() * batch.values.double().unsqueeze(-1)
    return embedded.flatten(1)


def initialised_network(arch: Sequence[int], in_features: int, n_outputs: int, seed: int,
                        batch_norm: bool = True) -> nn.Sequential:
    """The MLP of ``arch`` with PyTorch's default initialisation drawn from ``seed`` (the global
    torch RNG is left untouched), float64, train mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, _NETWORK_STREAM))
        network = build_mlp(in_features, arch, n_outputs, batch_norm=batch_norm)
    return network.double().train()


def linear_layers(network: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``network`` in forward order."""
    return [module for module in network.modules() if isinstance(module, nn.Linear)]


def outputs_of(network: nn.Module, module_type: type, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``network`` on ``inputs``; return its output and the outputs of every module of
    ``module_type`` (in forward order), still attached to the autograd graph."""
    captured: list[torch.Tensor] = []
    handles = [module.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
               for module in network.modules() if isinstance(module, module_type)]
    try:
        output = network(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return output, captured
