"""One row, as ``to_json(t)`` gives it to ``trails.predict``, into a model's ids and values.

The same encoding as :meth:`trails.data.layout.Layout.encode` of
:func:`trails.data.row_values.columns_from_rows` (what the table path and training read), done
value by value in Python for a single row instead of building arrays: a categorical value is
looked up as PostgreSQL's ``::text`` would print it (NULL or '' → the missing id, a value not
in the dictionary → the unknown id; value 1.0); a numeric one is standardised with the train
mean and std (NULL, NaN, ±Infinity → the missing id, value 1.0).
"""

from __future__ import annotations

import json
import math

from trails.data.row_values import as_postgres_text
from trails.errors import TrailsError

NON_FINITE = ("NaN", "Infinity", "-Infinity")
"""How to_json and to_jsonb render those numbers: read as missing."""


class RowEncoder:
    """A layout's fields, ready for one row at a time.

    Args:
        layout: the model's :class:`~trails.data.layout.Layout`.
        model_id, dataset: named in errors.
    """

    def __init__(self, layout, model_id: int, dataset: str):
        self.fields = layout.fields
        self.model_id, self.dataset = model_id, dataset
        self.names = [f.name for f in self.fields]
        self.plan = []  # per field: (name, numeric?, lookup | (mean, std), first_id, missing_id, unknown_id)
        for f in self.fields:
            if f.kind == "numeric":
                self.plan.append((f.name, True, (float(f.mean), float(f.std)), f.first_id, f.missing_id, None))
            else:
                lookup = dict(zip(*f.dictionary()))
                self.plan.append((f.name, False, lookup, f.first_id, f.missing_id, f.unknown_id))

    def encode(self, row: dict) -> tuple[list, list]:
        """``(ids, values)``: ``F`` ints and ``F`` floats (float64; the model rounds them to float32
        as the batch path does).

        Raises:
            TrailsError: naming every field ``row`` lacks, or holds with a type the field cannot
                read (a numeric field needs a JSON number or NULL; no field takes an object or
                array).
        """
        ids, values = [], []
        for name, numeric, lookup, first_id, missing_id, unknown_id in self.plan:
            try:
                value = row[name]
            except KeyError:
                self.check(row)
                raise
            if value is None:
                ids.append(missing_id)
                values.append(1.0)
            elif numeric:
                if type(value) not in (int, float):
                    if value in NON_FINITE:
                        ids.append(missing_id)
                        values.append(1.0)
                        continue
                    self.check(row)
                x = float(value)
                if math.isfinite(x):
                    ids.append(first_id)
                    values.append((x - lookup[0]) / lookup[1])
                else:
                    ids.append(missing_id)
                    values.append(1.0)
            else:
                if type(value) is not str:
                    if isinstance(value, (dict, list)):
                        self.check(row)
                    value = as_postgres_text(value)
                ids.append(missing_id if value == "" else lookup.get(value, unknown_id))
                values.append(1.0)
        return ids, values

    def check(self, row: dict) -> None:
        """Raise TrailsError naming every model field ``row`` lacks, or holds with a type the
        field cannot read (see :meth:`encode`)."""
        missing = [name for name in self.names if name not in row]
        if missing:
            raise TrailsError(f"the row lacks {len(missing)} of the {len(self.names)} columns model {self.model_id} "
                              f"reads: {', '.join(missing)}",
                              detail="model columns: " + ", ".join(self.names),
                              hint=f"pass a row of a table with those columns (the model was trained on {self.dataset})")
        wrong = []
        for f in self.fields:
            value = row[f.name]
            if value is None or (f.kind == "numeric" and value in NON_FINITE):
                continue
            if isinstance(value, (dict, list)) or (
                    f.kind == "numeric" and (isinstance(value, (bool, str)) or not isinstance(value, (int, float)))):
                wrong.append(f"{f.name} ({'a number' if f.kind == 'numeric' else 'a scalar'} expected, "
                             f"got {type(value).__name__} {json.dumps(value)[:40]})")
        if wrong:
            raise TrailsError(f"the row has columns of a type model {self.model_id} cannot read: {', '.join(wrong)}",
                              hint="cast the columns to the types of the training table")
