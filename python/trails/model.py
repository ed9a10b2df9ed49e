"""The tabular model that every arch of the search space describes: how it is built, how its
weights travel as bytes, and what it predicts. TFMEMs, training and stored models all use it;
the registry, predict, export and refit reach it through the MLP family
(:mod:`trails.families.mlp`), never directly.

Each row is ``F`` fields; field ``f`` holds a feature id ``ids[:, f]`` (an index into one
embedding table shared by all fields, ids laid end to end per field) and a value
``values[:, f]`` (1.0 for a categorical field, the number for a numeric one). The model embeds
each id (``embedding_dim`` numbers), multiplies the embedding by the value, flattens the
``F × embedding_dim`` numbers and runs an MLP: per hidden width ``Linear → BatchNorm1d (optional)
→ ReLU`` (with dropout when training with it: :class:`ReLUDropout`), then a ``Linear`` to
``n_outputs`` logits. A numeric field may instead be embedded piecewise-linearly in its value
(:mod:`trails.piecewise`, the recipe's ``numeric_bins``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from trails.piecewise import PiecewiseNumeric, numeric_of_state


class ReLUDropout(nn.Module):
    """ReLU, then dropout of probability ``p`` while training (the identity in eval mode). It
    holds no parameters and takes the ReLU's place in the MLP, so a network trained with
    dropout has the ``state_dict`` keys of one trained without: predict, export and the numpy
    forward pass of :mod:`trails.serving` read both alike.

    **Masks from a pool.** ``torch.nn.functional.dropout`` draws a Bernoulli number per
    activation, which on a CPU costs as much as the layer's matmul (9 ms for 512 × 1,536
    activations on 2 cores, against 2.6 ms for the matmul). Here a pool of at least
    :data:`POOL_FACTOR` times a call's activations of i.i.d. keep/drop draws is made once (from
    the global torch RNG) and each call takes a window of it at a random offset (0.5 ms): every
    mask is i.i.d. Bernoulli within itself; two masks are windows of the same pool. The trainer
    draws a new pool at the start of every epoch (:meth:`refresh`, the global RNG seeded from the
    trial's generator), so training is reproducible and continues exactly when resumed.
    """

    POOL_FACTOR = 4
    MIN_POOL = 1 << 20

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self._pool: torch.Tensor | None = None

    def refresh(self) -> None:
        """Forget the pool: the next training call draws a new one."""
        self._pool = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        if not self.training or self.p <= 0:
            return x
        n = x.numel()
        if self._pool is None or self._pool.numel() < 2 * n or self._pool.device != x.device:
            self._pool = torch.rand(max(self.MIN_POOL, self.POOL_FACTOR * n), device=x.device) >= self.p
        offset = int(torch.randint(0, self._pool.numel() - n + 1, (1,)))
        return x * self._pool[offset:offset + n].view_as(x) * (1.0 / (1.0 - self.p))


def build_mlp(
    in_features: int,
    hidden: Sequence[int],
    n_outputs: int = 2,
    batch_norm: bool = True,
    bias: bool = True,
    dropout: float = 0.0,
) -> nn.Sequential:
    """The MLP part of an arch: ``[Linear, BatchNorm1d?, ReLU]`` per hidden width, then ``Linear``.

    Args:
        in_features: width of the input (``n_fields × embedding_dim`` for the tabular model).
        hidden: hidden widths, first layer first (the arch).
        n_outputs: logits out.
        batch_norm: put a ``BatchNorm1d`` after each hidden ``Linear``.
        bias: give every ``Linear`` a bias.
        dropout: when > 0, each ReLU is a :class:`ReLUDropout` of this probability (same
            parameters and ``state_dict`` keys).

    Returns:
        ``nn.Sequential`` mapping ``(B, in_features)`` to ``(B, n_outputs)``; its ``nn.Linear``
        modules are, in order, the hidden layers then the output layer. Weights get PyTorch's
        default initialisation from the global torch RNG.

    Raises:
        ValueError: for a non-positive size.
    """
    sizes = [int(in_features), *(int(width) for width in hidden), int(n_outputs)]
    if min(sizes) < 1:
        raise ValueError(f"every layer size must be >= 1, got in_features={in_features}, "
                         f"hidden={tuple(hidden)}, n_outputs={n_outputs}")
    modules: list[nn.Module] = []
    for fan_in, width in zip(sizes[:-2], sizes[1:-1]):
        modules.append(nn.Linear(fan_in, width, bias=bias))
        if batch_norm:
            modules.append(nn.BatchNorm1d(width))
        modules.append(ReLUDropout(dropout) if dropout > 0 else nn.ReLU())
    modules.append(nn.Linear(sizes[-2], sizes[-1], bias=bias))
    return nn.Sequential(*modules)


def init_embedding_table(table: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``table`` (n_ids, embedding_dim) in place with the model's embedding initialisation:
    Xavier-uniform, as TRAILS' tabular MLP. Returns ``table``."""
    with torch.no_grad():
        fan_out, fan_in = table.shape
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        table.uniform_(-bound, bound, generator=generator)
    return table


class TabularMLP(nn.Module):
    """Embedding of each field × its value → flatten → MLP (see the module docstring).

    Args:
        n_ids: size of the embedding table (number of distinct feature ids over all fields).
        n_fields: fields per row (``F``).
        hidden: hidden widths (the arch), e.g. ``(8, 16, 32, 64)``.
        embedding_dim: numbers per embedded id.
        batch_norm: BatchNorm1d after each hidden Linear.
        n_outputs: logits out (the task's: 2 binary, one per class, 1 regression).
        dropout: dropout probability after each hidden ReLU while training (0: none).
        numeric: ``(fields, first_ids, lower, inv_width)`` of the numeric fields embedded
            piecewise-linearly (:func:`trails.piecewise.numeric_bins_of`); None: all linear.

    Attributes:
        embedding: ``nn.Embedding(n_ids, embedding_dim)``.
        mlp: ``nn.Sequential`` of the hidden layers and the output layer (:func:`build_mlp`).
        numeric: the :class:`~trails.piecewise.PiecewiseNumeric` embeddings, or None.
    """

    def __init__(
        self,
        n_ids: int,
        n_fields: int,
        hidden: Sequence[int],
        embedding_dim: int = 10,
        batch_norm: bool = True,
        n_outputs: int = 2,
        dropout: float = 0.0,
        numeric: tuple | None = None,
    ):
        super().__init__()
        if n_ids < 1 or n_fields < 1 or embedding_dim < 1:
            raise ValueError(f"n_ids, n_fields and embedding_dim must be >= 1, got {n_ids}, {n_fields}, "
                             f"{embedding_dim}")
        self.n_ids = int(n_ids)
        self.n_fields = int(n_fields)
        self.embedding_dim = int(embedding_dim)
        self.hidden = tuple(int(width) for width in hidden)
        self.embedding = nn.Embedding(self.n_ids, self.embedding_dim)
        init_embedding_table(self.embedding.weight)
        self.mlp = build_mlp(self.n_fields * self.embedding_dim, self.hidden, n_outputs, batch_norm, dropout=dropout)
        self.numeric = None if numeric is None else PiecewiseNumeric(self.n_fields, *numeric, self.embedding_dim)

    def embed(self, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` ids and values → ``(B, F × embedding_dim)`` MLP input.

        Raises:
            ValueError: when ``ids`` and ``values`` are not both ``(B, n_fields)``.
        """
        if ids.dim() != 2 or ids.shape != values.shape or ids.shape[1] != self.n_fields:
            raise ValueError(f"ids and values must both be (B, {self.n_fields}), got "
                             f"{tuple(ids.shape)} and {tuple(values.shape)}")
        embedded = self.embedding(ids) * values.unsqueeze(-1).to(self.embedding.weight.dtype)
        if self.numeric is not None:
            embedded = self.numeric(ids, values, embedded)
        return embedded.flatten(1)

    def forward(self, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``ids`` LongTensor (B, F), ``values`` FloatTensor (B, F) → logits (B, n_outputs)."""
        return self.mlp(self.embed(ids, values))


def build_model(arch: Sequence[int], n_ids: int, n_fields: int, embedding_dim: int = 10,
                batch_norm: bool = True, state: dict | bytes | None = None, device="cpu",
                n_outputs: int = 2, dropout: float = 0.0, numeric: tuple | None = None) -> TabularMLP:
    """The :class:`TabularMLP` of ``arch`` on ``device`` with ``n_outputs`` logits (the task's),
    with ``dropout`` after each hidden ReLU while it trains and ``numeric`` fields embedded
    piecewise-linearly (see :class:`TabularMLP`).

    With ``state`` (a ``state_dict``, or its bytes from :func:`state_to_bytes`) the weights are
    loaded and the model is returned in eval mode (its piecewise encoding, if any, is the
    state's: ``numeric`` is not used); without, it has a fresh initialisation from the global
    torch RNG and is in train mode.

    Raises:
        ValueError: for a non-positive size; RuntimeError when ``state`` does not fit ``arch``.
    """
    if isinstance(state, (bytes, bytearray, memoryview)):
        state = state_from_bytes(state)
    if state is not None:
        numeric = numeric_of_state(state)
    model = TabularMLP(n_ids, n_fields, tuple(arch), embedding_dim=embedding_dim, batch_norm=batch_norm,
                       n_outputs=n_outputs, dropout=dropout, numeric=numeric)
    if state is None:
        return model.to(device)
    model.load_state_dict(state)
    return model.to(device).eval()


def state_to_bytes(state_dict: dict) -> bytes:
    """``torch.save`` of ``state_dict``, moved to the CPU, as bytes (what the service ships and
    ``trails.models.weights`` stores)."""
    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, buffer)
    return buffer.getvalue()


def state_from_bytes(data: bytes, device="cpu") -> dict:
    """Inverse of :func:`state_to_bytes` (tensors only: ``weights_only=True``)."""
    return torch.load(io.BytesIO(bytes(data)), map_location=device, weights_only=True)


def mlp_parameters(arch: Sequence[int], in_features: int, n_outputs: int = 2, batch_norm: bool = True) -> int:
    """Parameters of the MLP part of ``arch`` (what ``max_params`` bounds): every Linear's
    weights and biases, and each BatchNorm1d's weight and bias; the embedding table (set by the
    layout) is not counted. Equals ``sum(p.numel() for p in TabularMLP(...).mlp.parameters())``."""
    return int(mlp_parameters_of(np.array([tuple(arch)]), in_features, n_outputs, batch_norm)[0])


def mlp_parameters_of(archs: np.ndarray, in_features: int, n_outputs: int = 2,
                      batch_norm: bool = True) -> np.ndarray:
    """:func:`mlp_parameters` of every row of ``archs`` (int64 ``(N, layers)``), int64 ``(N,)``."""
    archs = np.asarray(archs, dtype=np.int64)
    fan_in = np.concatenate([np.full((len(archs), 1), int(in_features), dtype=np.int64), archs], axis=1)
    hidden = (fan_in[:, :-1] * archs + archs).sum(axis=1)
    output = archs[:, -1] * int(n_outputs) + int(n_outputs)
    return hidden + output + (2 * archs.sum(axis=1) if batch_norm else 0)


def predict_outputs(model: nn.Module, task, ids, values, batch_size: int = 8192) -> np.ndarray:
    """What ``model`` predicts for every row, as ``task`` reads its logits
    (:meth:`trails.task.Task.outputs`): class probabilities float64 ``(N, C)``, or the
    prediction in the label's units float64 ``(N,)`` for regression.

    Args:
        model: a :class:`TabularMLP`; run in eval mode here, its train/eval mode restored after.
        task: a :class:`~trails.task.Task` whose ``n_outputs`` is the model's.
        ids: int64 ``(N, F)``; values: float32 ``(N, F)`` — tensors or numpy arrays, moved to
            the model's device batch by batch.
        batch_size: rows per forward pass (memory; changes the result by float32 round-off only).
    """
    device = next(model.parameters()).device
    ids = torch.as_tensor(ids, dtype=torch.int64)
    values = torch.as_tensor(values, dtype=torch.float32)
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, ids.shape[0], int(batch_size)):
                logits = model(ids[start:start + batch_size].to(device),
                               values[start:start + batch_size].to(device))
                parts.append(task.outputs(logits).cpu())
    finally:
        model.train(was_training)
    if not parts:
        return np.empty((0,) if task.kind == "regression" else (0, task.n_outputs), dtype=np.float64)
    return torch.cat(parts).numpy()


def positive_probability(model: nn.Module, ids, values, batch_size: int = 8192) -> np.ndarray:
    """P(class 1) of every row under a binary ``model`` (two logits), float64 ``(N,)``
    (:func:`predict_outputs`' second column)."""
    from trails.task import BINARY_01

    return predict_outputs(model, BINARY_01, ids, values, batch_size)[:, 1]
