"""A stored model ready to score rows: its encoder and its forward pass, kept per backend."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from trails.data.session import Session
from trails.errors import TrailsError
from trails.serving.row_encoder import RowEncoder
from trails.serving.stored import StoredRow, read_stored

CACHE_SIZE = 4
"""Models kept per backend (the least recently used goes first)."""

_SCORERS: "OrderedDict[int, Scorer]" = OrderedDict()


@dataclass
class Scorer:
    """A model's row encoder and forward pass (:class:`~.mlp_forward.MlpForward` or
    :class:`~.trees_forward.TreesForward`: ``outputs(ids, values)`` for many rows,
    ``row_outputs(ids, values)`` for one)."""

    stored: StoredRow
    encoder: RowEncoder
    forward: object

    @property
    def task(self):
        """The model's :class:`~trails.task.Task`."""
        return self.stored.task

    def row_outputs(self, row: dict):
        """What the model predicts for one row dict, as plain floats: a list of class
        probabilities, or the regression value.

        Raises:
            TrailsError: for a row the model cannot read (:meth:`RowEncoder.encode`).
        """
        return self.forward.row_outputs(*self.encoder.encode(row))

    def outputs(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """What the model predicts for encoded rows: ``(B, C)`` probabilities or ``(B,)`` values."""
        return self.forward.outputs(ids, values)


def build_forward(stored: StoredRow):
    """The forward pass of ``stored``'s family, checked against its layout.

    Raises:
        TrailsError: for a family this version cannot serve, or weights it cannot read or that
            do not fit the layout (ids, fields, outputs).
    """
    layout = stored.layout
    if stored.family == "gbdt":
        from trails.serving.tree_format import read_trees_bytes
        from trails.serving.trees_forward import TreesForward

        model_string, feature_map = read_trees_bytes(stored.weights)
        fits = (feature_map.n_ids, feature_map.n_fields) == (layout.n_ids, layout.n_fields)
        forward = TreesForward(model_string, feature_map, stored.task) if fits else None
    elif stored.family == "mlp":
        from trails.serving.mlp_forward import MlpForward
        from trails.serving.torch_weights import read_state

        try:
            forward = MlpForward(read_state(stored.weights), stored.task)
        except KeyError as error:
            raise TrailsError(f"the weights of model {stored.model_id} lack {error} of an MLP",
                              hint="the model's family and its weights disagree; store the model again") from None
        fits = forward.fits(layout.n_ids, layout.n_fields, stored.task.n_outputs)
    else:
        raise TrailsError(f"model {stored.model_id} is of family {stored.family!r}, which this trails cannot serve",
                          hint="upgrade the trails package")
    if not fits:
        raise TrailsError(f"the weights of model {stored.model_id} do not fit its layout ({layout.n_ids} ids, "
                          f"{layout.n_fields} fields, {stored.task.n_outputs} outputs)",
                          hint="the model and its layout disagree; store the model again")
    return forward


def scorer_for(session: Session, model_id) -> Scorer:
    """The scorer of ``model_id``, built at its first use in this process (a backend).

    Raises:
        TrailsError: when the model does not exist or cannot be served.
    """
    if model_id in _SCORERS:
        _SCORERS.move_to_end(model_id)
        return _SCORERS[model_id]
    stored = read_stored(session, model_id)
    scorer = Scorer(stored, RowEncoder(stored.layout, stored.model_id, stored.dataset), build_forward(stored))
    _SCORERS[model_id] = scorer
    while len(_SCORERS) > CACHE_SIZE:
        _SCORERS.popitem(last=False)
    return scorer
