"""An MLP's forward pass in numpy, from its stored ``state_dict`` (:mod:`.torch_weights`).

The network is :class:`trails.model.TabularMLP` in eval mode: each field's embedding times its
value (a numeric field's piecewise-linear embedding: :func:`trails.serving.piecewise_forward.piecewise_numpy`),
flattened, then ``[Linear, BatchNorm1d?, ReLU]`` per hidden width and a last ``Linear``. A batch norm in eval mode is an affine map of its running statistics (eps 1e-5),
folded here into the Linear before it (in float64, then stored as float32); the products run
in float32 as torch's do, then the logits are read as the task reads them
(:meth:`trails.task.Task.outputs`): a float64 softmax, or ``logit · std + mean`` for
regression. Answers agree with torch's to float32 round-off (1e-6 in the tests).
"""

from __future__ import annotations

import math

import numpy as np

from trails.serving.piecewise_forward import STATE_PREFIX, piecewise_numpy

BATCH_NORM_EPS = 1e-5
"""``nn.BatchNorm1d``'s default eps, which :func:`trails.model.build_mlp` keeps."""


def _module_indexes(state: dict) -> list[int]:
    """The indexes ``i`` of ``mlp.<i>.*`` entries that hold parameters, in order."""
    return sorted({int(name.split(".")[1]) for name in state if name.startswith("mlp.")})


class MlpForward:
    """The stored network as numpy arrays, each batch norm folded into the Linear before it.

    Args:
        state: ``{name: array}`` of :func:`~trails.serving.torch_weights.read_state`.
        task: the model's :class:`~trails.task.Task` (how logits are read).

    Raises:
        KeyError: when ``state`` is not a TabularMLP's.
    """

    def __init__(self, state: dict, task):
        self.embedding = np.ascontiguousarray(state["embedding.weight"], dtype=np.float32)
        self.numeric = {name: array for name, array in state.items() if name.startswith(STATE_PREFIX)}
        self.task = task
        self.layers = []  # (W.T float32 (in, out), b float32 (out,)): ReLU between two, none after the last
        for index in _module_indexes(state):
            prefix = f"mlp.{index}."
            if prefix + "running_mean" not in state:
                self.layers.append((state[prefix + "weight"].T.astype(np.float64), state[prefix + "bias"].astype(np.float64)))
                continue
            # y = (x·Wᵀ + b − mean) · γ / √(var + eps) + β  =  x·(Wᵀ·scale) + ((b − mean)·scale + β)
            scale = state[prefix + "weight"].astype(np.float64) / np.sqrt(
                state[prefix + "running_var"].astype(np.float64) + BATCH_NORM_EPS)
            weights, bias = self.layers[-1]
            self.layers[-1] = (weights * scale, (bias - state[prefix + "running_mean"]) * scale
                               + state[prefix + "bias"].astype(np.float64))
        self.layers = [(np.ascontiguousarray(w, dtype=np.float32), b.astype(np.float32)) for w, b in self.layers]

    def fits(self, n_ids: int, n_fields: int, n_outputs: int) -> bool:
        """Whether the weights are those of a network for this many ids, fields and outputs."""
        width = n_fields * self.embedding.shape[1]
        chained = all(a[0].shape[1] == b[0].shape[0] for a, b in zip(self.layers, self.layers[1:]))
        binned = self.numeric.get(STATE_PREFIX + "fields", np.empty(0, dtype=np.int64))
        return (self.embedding.shape[0] == n_ids and bool(self.layers) and self.layers[0][0].shape[0] == width
                and self.layers[-1][0].shape[1] == n_outputs and chained and bool((binned < n_fields).all()))

    def logits(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Logits float32 ``(B, n_outputs)`` of ids int64 ``(B, F)`` and values float32 ``(B, F)``."""
        x = self.embedding[ids] * values[:, :, None]
        x = piecewise_numpy(self.numeric, ids, values, x).reshape(len(ids), -1)
        for weights, bias in self.layers[:-1]:
            x = x @ weights
            x += bias
            np.maximum(x, 0, out=x)
        weights, bias = self.layers[-1]
        return x @ weights + bias

    def outputs(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Class probabilities float64 ``(B, C)``, or regression predictions float64 ``(B,)``."""
        logits = self.logits(ids, values).astype(np.float64)
        if self.task.kind == "regression":
            return logits[:, 0] * self.task.std + self.task.mean
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)

    def row_outputs(self, ids: list, values: list):
        """:meth:`outputs` of one encoded row (lists of ``F`` ids and values), as plain floats:
        a list of class probabilities, or the regression value. The same float32 arithmetic
        on one row's vectors, without the batch dimension's overhead."""
        values = np.array(values, dtype=np.float32)
        x = self.embedding[ids] * values[:, None]
        if self.numeric:
            x = piecewise_numpy(self.numeric, np.array([ids]), values[None], x[None])[0]
        x = x.ravel()
        for weights, bias in self.layers[:-1]:
            x = x @ weights
            x += bias
            np.maximum(x, 0, out=x)
        weights, bias = self.layers[-1]
        logits = (x @ weights + bias).tolist()  # float32 → Python floats (float64), as outputs' astype does
        if self.task.kind == "regression":
            return logits[0] * self.task.std + self.task.mean
        top = max(logits)
        weights = [math.exp(logit - top) for logit in logits]
        total = sum(weights)
        return [weight / total for weight in weights]
