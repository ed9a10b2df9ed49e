"""``trails.models.hyper``, typed: what a stored model was built and trained with.

The column is ``jsonb``; :meth:`ModelHyper.to_json` writes it and :meth:`ModelHyper.from_json`
reads it back, old rows included: a model stored before families existed names no ``family``
(it is an MLP), and one stored by 0.1.0 holds only ``n_ids``, ``n_fields``, ``embedding_dim``,
``batch_norm`` and ``epochs`` (the other settings read as None, the seed as 0). Keys this version
does not know are kept in :attr:`ModelHyper.extra` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from trails.families.base import DEFAULT_FAMILY

DEFAULT_SEED = 0
"""The run seed of a model whose ``hyper`` names none (what refit has always assumed)."""


@dataclass(frozen=True)
class ModelHyper:
    """A stored model's ``hyper``.

    Attributes:
        n_ids, n_fields: the layout's embedding-table size and fields per row.
        n_outputs: the model's outputs (the task's), None on rows of 0.1.0.
        embedding_dim, batch_norm: the MLP's embedding width and BatchNorm1d switch.
        epochs: units of the family's training resource the model was trained for (the
            winner's epochs; a refit's epochs), None when unknown.
        mlp_params: the model's size as the result row reports it (``params``:
            :meth:`ModelFamily.model_parameters`; a tree ensemble's nodes).
        learning_rate, batch_size, iter_per_epoch: the training settings (None: the
            configuration's, as on rows of 0.1.0).
        seed: the run's seed (the candidate's own seed is :meth:`Candidate.seed` of it).
        family: the model's family (:mod:`trails.families`).
        rounds_per_unit: boosting rounds per unit of ``epochs`` (trees; None on older rows).
        refit_rows: for a refit model, the train + valid rows it was trained on.
        extra: keys of the stored JSON this class does not know, kept as they were.
    """

    n_ids: int
    n_fields: int
    n_outputs: int | None = None
    embedding_dim: int | None = None
    batch_norm: bool | None = None
    epochs: int | None = None
    mlp_params: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    iter_per_epoch: int | None = None
    seed: int = DEFAULT_SEED
    family: str = DEFAULT_FAMILY
    rounds_per_unit: int | None = None
    refit_rows: int | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON object stored in ``trails.models.hyper`` (``refit_rows`` only when set)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("refit_rows", "extra")}
        if self.refit_rows is not None:
            data["refit_rows"] = self.refit_rows
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: dict) -> "ModelHyper":
        """The hyper of a stored JSON object (see the module docstring for old rows).

        Raises:
            KeyError: when ``n_ids`` or ``n_fields`` is missing (no version wrote such a row).
        """
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("seed") is None:
            values["seed"] = DEFAULT_SEED
        if values.get("family") is None:
            values["family"] = DEFAULT_FAMILY
        return cls(n_ids=values.pop("n_ids"), n_fields=values.pop("n_fields"), **values,
                   extra={key: value for key, value in data.items() if key not in known})
