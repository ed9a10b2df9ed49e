"""The batch of rows that data-dependent TFMEMs score archs on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trails.errors import TrailsError


@dataclass(frozen=True)
class TfmemBatch:
    """A few rows of the training split in the model's input layout.

    Attributes:
        ids: LongTensor (B, F): feature id of each field, 0 ≤ id < n_ids.
        values: FloatTensor (B, F): value multiplying each field's embedding.
        labels: LongTensor (B,): class of each row, 0 ≤ label.
        n_ids: size of the embedding table.
        n_fields: F.
        embedding_dim: numbers per embedded id; the MLP input has ``in_features`` =
            ``n_fields × embedding_dim`` columns.

    Raises (on construction):
        TrailsError (a ValueError): for inconsistent shapes, an empty batch, an id outside
        ``[0, n_ids)`` or a negative label.
    """

    ids: torch.Tensor
    values: torch.Tensor
    labels: torch.Tensor
    n_ids: int
    n_fields: int
    embedding_dim: int = 10

    def __post_init__(self):
        if self.ids.dim() != 2 or tuple(self.ids.shape) != tuple(self.values.shape):
            raise TrailsError(f"ids and values must both be (B, F), got {tuple(self.ids.shape)} and "
                              f"{tuple(self.values.shape)}")
        rows, fields = self.ids.shape
        if rows < 1:
            raise TrailsError("a TFMEM batch needs at least one row")
        if fields != self.n_fields:
            raise TrailsError(f"ids have {fields} fields, n_fields is {self.n_fields}")
        if tuple(self.labels.shape) != (rows,):
            raise TrailsError(f"labels must be ({rows},), got {tuple(self.labels.shape)}")
        if self.embedding_dim < 1:
            raise TrailsError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if int(self.ids.min()) < 0 or int(self.ids.max()) >= self.n_ids:
            raise TrailsError(f"feature ids must lie in [0, {self.n_ids}), got "
                              f"[{int(self.ids.min())}, {int(self.ids.max())}]")
        if int(self.labels.min()) < 0:
            raise TrailsError(f"labels must be >= 0, got {int(self.labels.min())}")

    @classmethod
    def from_numpy(cls, ids, values, labels, n_ids: int | None = None, embedding_dim: int = 10) -> "TfmemBatch":
        """Build from array-likes: ids (B, F) ints, values (B, F) floats, labels (B,) ints.
        ``n_ids`` defaults to ``max(ids) + 1``; ``n_fields`` is F."""
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if ids.dim() != 2:
            raise TrailsError(f"ids must be (B, F), got shape {tuple(ids.shape)}")
        if n_ids is None:
            n_ids = int(ids.max()) + 1 if ids.numel() else 1
        return cls(ids, values, labels, int(n_ids), int(ids.shape[1]), int(embedding_dim))

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])

    @property
    def in_features(self) -> int:
        """Width of the MLP input: ``n_fields × embedding_dim``."""
        return self.n_fields * self.embedding_dim

    @property
    def n_classes(self) -> int:
        """Logits the scored networks output: at least 2, more when labels say so."""
        return max(2, int(self.labels.max()) + 1)


@dataclass(frozen=True)
class ScoringInputs:
    """What every TFMEM scores archs on: the MLP's input and output widths and, for the
    data-dependent ones, a batch of rows (``None`` when only data-agnostic TFMEMs will be used).

    Raises (on construction):
        TrailsError (a ValueError): when ``in_features`` < 1 or the batch has another width.
    """

    in_features: int
    batch: TfmemBatch | None = None
    n_outputs: int = 2  # the task's output width (data-agnostic TFMEMs' networks)

    def __post_init__(self):
        if int(self.in_features) < 1:
            raise TrailsError(f"in_features must be >= 1, got {self.in_features}")
        if self.batch is not None and self.batch.in_features != int(self.in_features):
            raise TrailsError(f"the batch has {self.batch.in_features} input features "
                              f"({self.batch.n_fields} fields × {self.batch.embedding_dim}), "
                              f"in_features is {self.in_features}")
