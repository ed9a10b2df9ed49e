"""Piecewise-linear embeddings of numeric fields (Gorishniy et al., NeurIPS 2022, "PLE").

A numeric field enters the tabular model as its standardised value ``z`` times one embedding
vector: a linear function of the number. With a piecewise-linear encoding the field's
embedding is instead

    e(z) = b + Σ_k clamp((z − lower_k) / width_k, 0, 1) · W_k

over the field's bins ``[lower_k, lower_k + width_k)`` (edges from train quantiles, in ``z``
units): a continuous function of ``z``, linear within each bin, with a learned slope vector
``W_k`` per bin; below the first edge it is ``b``, above the last ``b + Σ W_k``. The rows'
``(ids, values)`` do not change (the layout's encoding stays that of every model); the model
reads ``z`` from the value of a numeric field whose id is its value id, and keeps the plain
embedding of the missing id for NULL.

**Where the edges come from.** The layout stores each numeric field's train quantiles
(:attr:`trails.data.layout.Field.quantiles`, ``[layout] numeric_quantiles`` + 1 of them, in the
column's units); a run resolves them once (:meth:`trails.data.layout.Layout.numeric_edges`, in
``z`` units) into :attr:`TrainingSettings.numeric_edges`, and the recipe's ``numeric_bins``
(:mod:`trails.refinement.recipe`) says how many bins a candidate uses (0: the linear encoding).
The bins a model used are buffers of its ``state_dict`` (``numeric.*``), so predict, the numpy
forward pass (:mod:`trails.serving.piecewise_forward`, torch-free), export and a refit's warm
start encode a row exactly as training did. Its
weights encode the input, as the embedding table does, and like it are not counted in
``max_params`` or a model's ``params`` (:func:`trails.model.mlp_parameters`: the MLP part).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from trails.serving.piecewise_forward import STATE_PREFIX



def bin_edges(quantiles: Sequence[float], bins: int) -> np.ndarray:
    """At most ``bins`` bins' edges, ascending and distinct in float32, from a field's quantiles
    (``q_0 .. q_Q`` at ``k/Q``): those at ``round(j·Q/bins)``, ``j = 0..bins``, ties merged.
    Fewer than 2 distinct edges (a column with one value): empty."""
    quantiles = np.asarray(quantiles, dtype=np.float64)
    if len(quantiles) < 2 or bins < 1:
        return np.empty(0)
    positions = np.unique(np.round(np.linspace(0, len(quantiles) - 1, min(bins, len(quantiles) - 1) + 1)))
    # distinct as the model's float32 buffers hold them: no bin of width 0 there
    edges = np.unique(quantiles[positions.astype(np.int64)].astype(np.float32)).astype(np.float64)
    return edges if len(edges) >= 2 else np.empty(0)


def numeric_bins_of(numeric_edges: Sequence, bins: int) -> tuple | None:
    """``(fields, first_ids, lower, inv_width)`` for :class:`PiecewiseNumeric` from a run's
    ``numeric_edges`` (``(field index, value id, quantiles in z units)`` per numeric field) with
    at most ``bins`` bins each; None when ``bins`` is 0 or no field has two distinct edges.

    ``lower`` and ``inv_width`` are float32 ``(Fn, nb)``, ``nb`` the most bins of any field; a
    field with fewer has padding bins of width ∞ (``inv_width`` 0: never on)."""
    if bins < 1:
        return None
    chosen = [(int(field), int(first_id), bin_edges(quantiles, bins)) for field, first_id, quantiles in numeric_edges]
    chosen = [entry for entry in chosen if len(entry[2])]
    if not chosen:
        return None
    width = max(len(edges) - 1 for _, _, edges in chosen)
    lower = np.zeros((len(chosen), width), dtype=np.float32)
    inv_width = np.zeros((len(chosen), width), dtype=np.float32)
    for row, (_, _, edges) in enumerate(chosen):
        n = len(edges) - 1
        lower[row, :n] = edges[:-1]
        lower[row, n:] = edges[-1]
        inv_width[row, :n] = 1.0 / np.diff(edges)
    return (np.array([c[0] for c in chosen], dtype=np.int64), np.array([c[1] for c in chosen], dtype=np.int64),
            lower, inv_width)


def numeric_of_state(state: dict) -> tuple | None:
    """``(fields, first_ids, lower, inv_width)`` (as :func:`numeric_bins_of` gives them) of the
    piecewise encoding a model's ``state_dict`` holds; None when it has none."""
    if STATE_PREFIX + "lower" not in state:
        return None
    return tuple(np.asarray(state[STATE_PREFIX + name].cpu()) for name in ("fields", "first_ids", "lower", "inv_width"))


class PiecewiseNumeric(nn.Module):
    """The piecewise-linear embeddings of ``Fn`` numeric fields (module docstring).

    Args:
        n_fields: fields per row (``F``).
        fields: int64 ``(Fn,)``, the numeric fields' indexes in the row.
        first_ids: int64 ``(Fn,)``, each field's value id (any other id, the missing one, keeps
            its plain embedding).
        lower, inv_width: float32 ``(Fn, nb)``: each bin's lower edge and 1 / its width.
        embedding_dim: numbers per embedded field.

    Buffers (``state_dict``): ``fields``, ``first_ids``, ``lower``, ``inv_width`` and ``order``
    (int64 ``(F,)``: where each field's embedding is taken from in ``[plain fields, piecewise]``).
    Parameters: ``weight`` ``(Fn, nb, embedding_dim)``, ``bias`` ``(Fn, embedding_dim)``,
    initialised as a ``Linear(nb, embedding_dim)`` per field is (uniform ±1/√nb).
    """

    def __init__(self, n_fields: int, fields, first_ids, lower, inv_width, embedding_dim: int):
        super().__init__()
        fields = torch.as_tensor(np.asarray(fields), dtype=torch.int64)
        lower = torch.as_tensor(np.asarray(lower), dtype=torch.float32)
        if fields.dim() != 1 or lower.dim() != 2 or lower.shape[0] != fields.shape[0] or not len(fields):
            raise ValueError(f"fields (Fn,) and lower (Fn, nb) do not fit: {tuple(fields.shape)}, {tuple(lower.shape)}")
        if int(fields.min()) < 0 or int(fields.max()) >= n_fields or len(set(fields.tolist())) != len(fields):
            raise ValueError(f"numeric fields {fields.tolist()} are not distinct fields of {n_fields}")
        order = torch.arange(n_fields, dtype=torch.int64)
        order[fields] = n_fields + torch.arange(len(fields), dtype=torch.int64)
        self.register_buffer("fields", fields)
        self.register_buffer("first_ids", torch.as_tensor(np.asarray(first_ids), dtype=torch.int64))
        self.register_buffer("lower", lower)
        self.register_buffer("inv_width", torch.as_tensor(np.asarray(inv_width), dtype=torch.float32))
        self.register_buffer("order", order)
        n_numeric, bins = lower.shape
        bound = 1.0 / bins ** 0.5
        self.weight = nn.Parameter(torch.empty(n_numeric, bins, embedding_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_numeric, embedding_dim).uniform_(-bound, bound))

    def forward(self, ids: torch.Tensor, values: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """``embedded`` ``(B, F, D)`` (each field's plain embedding × value) with the numeric
        fields' embeddings replaced where their id is the value id."""
        z = values.index_select(1, self.fields).to(self.weight.dtype)
        parts = torch.clamp((z.unsqueeze(-1) - self.lower) * self.inv_width, 0.0, 1.0)
        piecewise = torch.einsum("bfk,fkd->bfd", parts, self.weight) + self.bias
        present = (ids.index_select(1, self.fields) == self.first_ids).unsqueeze(-1)
        numeric = torch.where(present, piecewise.to(embedded.dtype), embedded.index_select(1, self.fields))
        return torch.cat([embedded, numeric], dim=1).index_select(1, self.order)
