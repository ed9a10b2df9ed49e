"""An MLP's forward pass in numpy, from its stored ``state_dict`` (:mod:`.torch_weights`).

The network is :class:`trails.model.TabularMLP` in eval mode: each field's embedding times its
value, flattened, then ``[Linear, BatchNorm1d?, ReLU]`` per hidden width and a last
``Linear``. Computed in float32 as torch computes it (batch norm with its running statistics,
eps 1e-5), then read as the task reads logits (:meth:`trails.task.Task.outputs`): a float64
softmax, or ``logit · std + mean`` for regression. Answers agree with torch's to float32
round-off.
"""

from __future__ import annotations

import math

import numpy as np

BATCH_NORM_EPS = 1e-5
"""``nn.BatchNorm1d``'s default eps, which :func:`trails.model.build_mlp` keeps."""


def _module_indexes(state: dict) -> list[int]:
    """The indexes ``i`` of ``mlp.<i>.*`` entries that hold parameters, in order."""
    return sorted({int(name.split(".")[1]) for name in state if name.startswith("mlp.")})


class MlpForward:
    """The stored network as numpy arrays.

    Args:
        state: ``{name: array}`` of :func:`~trails.serving.torch_weights.read_state`.
        task: the model's :class:`~trails.task.Task` (how logits are read).

    Raises:
        KeyError: when ``state`` is not a TabularMLP's.
    """

    def __init__(self, state: dict, task):
        self.embedding = np.ascontiguousarray(state["embedding.weight"], dtype=np.float32)
        self.task = task
        self.layers = []  # ("linear", W.T, b) | ("norm", scale, shift), in order
        for index in _module_indexes(state):
            prefix = f"mlp.{index}."
            if prefix + "running_mean" in state:
                scale = state[prefix + "weight"] / np.sqrt(state[prefix + "running_var"] + np.float32(BATCH_NORM_EPS))
                self.layers.append(("norm", state[prefix + "running_mean"], scale.astype(np.float32),
                                    state[prefix + "bias"]))
            else:
                self.layers.append(("linear", np.ascontiguousarray(state[prefix + "weight"].T), state[prefix + "bias"]))

    def fits(self, n_ids: int, n_fields: int, n_outputs: int) -> bool:
        """Whether the weights are those of a network for this many ids, fields and outputs."""
        linear = [layer for layer in self.layers if layer[0] == "linear"]
        width = n_fields * self.embedding.shape[1]
        shapes_chain = all(a[1].shape[1] == b[1].shape[0] for a, b in zip(linear, linear[1:]))
        return (self.embedding.shape[0] == n_ids and bool(linear) and linear[0][1].shape[0] == width
                and linear[-1][1].shape[1] == n_outputs and shapes_chain)

    def logits(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Logits float32 ``(B, n_outputs)`` of ids int64 ``(B, F)`` and values float32 ``(B, F)``."""
        x = (self.embedding[ids] * values[:, :, None]).reshape(len(ids), -1)
        last = len(self.layers) - 1
        for position, layer in enumerate(self.layers):
            if layer[0] == "linear":
                x = x @ layer[1] + layer[2]
            else:
                x = (x - layer[1]) * layer[2] + layer[3]
            if position < last and self.layers[position + 1][0] != "norm":
                np.maximum(x, 0, out=x)
        return x

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
        x = (self.embedding[ids] * np.array(values, dtype=np.float32)[:, None]).ravel()
        last = len(self.layers) - 1
        for position, layer in enumerate(self.layers):
            if layer[0] == "linear":
                x = x @ layer[1] + layer[2]
            else:
                x = (x - layer[1]) * layer[2] + layer[3]
            if position < last and self.layers[position + 1][0] != "norm":
                np.maximum(x, 0, out=x)
        logits = x.tolist()  # float32 → Python floats (float64), as outputs' astype does
        if self.task.kind == "regression":
            return logits[0] * self.task.std + self.task.mean
        top = max(logits)
        weights = [math.exp(logit - top) for logit in logits]
        total = sum(weights)
        return [weight / total for weight in weights]
