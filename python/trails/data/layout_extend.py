"""Extending a layout when its table grew, so that a model trained on it stays valid.

A warm start (:mod:`trails.selection.warm`) continues a stored model on a table that has new
rows. Inferring the layout again (:func:`~trails.data.layout.infer_layout`) would renumber the
ids — a value's id depends on every value sorted before it — and change the numeric fields'
means and standard deviations, so the stored weights would no longer mean what they meant.
:func:`extend_layout` keeps the old layout instead and adds to it:

* every value id, mean, standard deviation and the label's encoding stay as they were;
* values of a categorical field that the layout inferred now has and the old one lacks get new
  ids after the old value ids (``added_values``/``added_ids``), field by field;
* the missing and unknown ids move up past them (they stay the last ``2·fields`` ids).

:class:`IdMap` says where each old id went (value ids stay put, missing and unknown ids move),
so an MLP's embedding rows can be carried over (:meth:`IdMap.move_rows`); new ids start untrained.

When the table changed in a way that cannot be extended — a field's column was dropped or
changed type, a new column, another task or new classes of the label — :func:`extend_layout`
raises :class:`CannotExtend` saying why, and the caller starts cold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from trails.data.layout import Layout


class CannotExtend(Exception):
    """The old layout cannot describe the table now; ``str(error)`` says why."""


@dataclass(frozen=True)
class IdMap:
    """Where the ids of one layout went in another: runs ``(old_start, new_start, length)``
    (ids ``old_start + i`` → ``new_start + i`` for ``i < length``); an id in no run has no
    counterpart. JSON-friendly (:meth:`to_json`)."""

    runs: tuple

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """int64 ``(old ids, new ids)``, parallel arrays."""
        old = [np.arange(start, start + length) for start, _, length in self.runs]
        new = [np.arange(start, start + length) for _, start, length in self.runs]
        empty = np.empty(0, dtype=np.int64)
        return (np.concatenate(old).astype(np.int64) if old else empty,
                np.concatenate(new).astype(np.int64) if new else empty)

    def move_rows(self, old_table, new_table) -> None:
        """Copy the rows of ``old_table`` (an embedding table ``[old n_ids, d]``, tensor or
        array) into ``new_table`` (``[new n_ids, d]``) where this map sends them; the other rows
        of ``new_table`` are left as they are.

        Raises:
            ValueError: when a run falls outside either table.
        """
        old_ids, new_ids = self.pairs()
        if len(old_ids) and (old_ids.max() >= len(old_table) or new_ids.max() >= len(new_table)):
            raise ValueError(f"the id map reaches past a table ({len(old_table)} → {len(new_table)} rows)")
        new_table[new_ids] = old_table[old_ids]

    def to_json(self) -> list:
        return [list(run) for run in self.runs]

    @classmethod
    def from_json(cls, data) -> "IdMap":
        return cls(tuple(tuple(int(x) for x in run) for run in data))


def id_map(old: Layout, new: Layout) -> IdMap:
    """Where ``old``'s ids are in ``new`` (a layout :func:`extend_layout` made of it, or ``old``
    itself), matched field by field: categorical values by value, numeric ids, missing and
    unknown ids by role.

    Raises:
        CannotExtend: when the two layouts have different fields.
    """
    if [(f.name, f.kind) for f in old.fields] != [(f.name, f.kind) for f in new.fields]:
        raise CannotExtend("the model's fields are not the table's fields")
    pairs = []
    for before, after in zip(old.fields, new.fields):
        if before.kind == "categorical":
            now = dict(zip(*after.dictionary()))
            pairs += [(i, now[value]) for value, i in zip(*before.dictionary()) if value in now]
        else:
            pairs.append((before.first_id, after.first_id))
        pairs += [(before.missing_id, after.missing_id), (before.unknown_id, after.unknown_id)]
    runs: list[list[int]] = []
    for old_id, new_id in sorted(pairs):
        if runs and old_id == runs[-1][0] + runs[-1][2] and new_id == runs[-1][1] + runs[-1][2]:
            runs[-1][2] += 1
        else:
            runs.append([old_id, new_id, 1])
    return IdMap(tuple(tuple(run) for run in runs))


def _check_same_table(old: Layout, inferred: Layout) -> None:
    """Raise :class:`CannotExtend` unless ``inferred`` (the table now) has ``old``'s fields,
    columns and task."""
    now = {f.name: f for f in inferred.fields}
    for fld in old.fields:
        if fld.name not in now and fld.name not in inferred.skipped:
            raise CannotExtend(f"column \"{fld.name}\" is gone")
        if fld.name in now and now[fld.name].sql_type != fld.sql_type:
            raise CannotExtend(f"column \"{fld.name}\" is {now[fld.name].sql_type} now, was {fld.sql_type}")
    known = {f.name for f in old.fields} | set(old.skipped)
    # any new column, even one left out now: a table split by hashing its rows splits them anew
    new_columns = [name for name in [f.name for f in inferred.fields] + list(inferred.skipped) if name not in known]
    if new_columns:
        raise CannotExtend("new column" + ("s " if len(new_columns) > 1 else " ")
                           + ", ".join(f'"{name}"' for name in new_columns))
    before, after = old.task, inferred.task
    if before.kind != after.kind:
        raise CannotExtend(f"the label is {after.kind} now, was {before.kind}")
    if before.is_classification and list(before.classes) != list(after.classes):
        added = [c for c in after.classes if c not in before.classes]
        raise CannotExtend(f"the label's classes changed ({', '.join(added) or 'some left out'})")


def extend_layout(old: Layout, inferred: Layout) -> Layout:
    """``old`` extended with the values of ``inferred`` (the layout inferred from the table
    now) that it lacks, as the module docstring says; ``train_rows`` and ``notes`` are
    ``inferred``'s, ``layout_id`` None (not stored yet). ``old`` is not changed.

    Raises:
        CannotExtend: when the table changed in a way the old layout cannot describe.
    """
    _check_same_table(old, inferred)
    now = {f.name: f for f in inferred.fields}
    fields = [dataclasses.replace(f, values=list(f.values), added_values=list(f.added_values),
                                  added_ids=list(f.added_ids)) for f in old.fields]
    next_id = sum(f.value_count for f in fields)
    for fld in fields:
        if fld.kind != "categorical" or fld.name not in now:
            continue
        have = set(fld.values) | set(fld.added_values)
        for value in now[fld.name].values:
            if value not in have:
                fld.added_values.append(value)
                fld.added_ids.append(next_id)
                next_id += 1
    for fld in fields:
        fld.missing_id, fld.unknown_id = next_id, next_id + 1
        next_id += 2
    return Layout(old.label, old.task, fields, dict(old.skipped), inferred.train_rows, None, list(inferred.notes))


def added_values(old: Layout, new: Layout) -> int:
    """How many values ``new`` has that ``old`` had not (0 for the same layout)."""
    return sum(len(f.added_values) for f in new.fields) - sum(len(f.added_values) for f in old.fields)


__all__ = ["CannotExtend", "IdMap", "added_values", "extend_layout", "id_map"]
