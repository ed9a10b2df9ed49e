"""A numeric field's piecewise-linear embedding (:mod:`trails.piecewise`) in numpy, for serving:
no torch here, so that predicting with an MLP never imports it."""

from __future__ import annotations

import numpy as np

STATE_PREFIX = "numeric."
"""The ``state_dict`` keys of a model's piecewise encoding start with this."""


def piecewise_numpy(state: dict, ids: np.ndarray, values: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """:meth:`trails.piecewise.PiecewiseNumeric.forward` in numpy (float32), from a
    ``state_dict`` of arrays (``numeric.*``); ``embedded`` unchanged when the state has none."""
    if STATE_PREFIX + "lower" not in state:
        return embedded
    get = lambda name: state[STATE_PREFIX + name]  # noqa: E731
    fields = get("fields").astype(np.int64)
    z = values[:, fields].astype(np.float32)
    parts = np.clip((z[:, :, None] - get("lower")) * get("inv_width"), 0.0, 1.0).astype(np.float32)
    piecewise = np.einsum("bfk,fkd->bfd", parts, get("weight").astype(np.float32)) + get("bias").astype(np.float32)
    present = (ids[:, fields] == get("first_ids"))[:, :, None]
    out = embedded.copy()
    out[:, fields] = np.where(present, piecewise, embedded[:, fields])
    return out
