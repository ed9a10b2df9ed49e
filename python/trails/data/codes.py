"""Field values as the column reader receives them → ids, without a Python object per value.

Three codes, one per way a column travels (:mod:`trails.data.columnar` picks one per column):

* :class:`NumberCodes` — smallint/integer categories as float8 (exact), NULL as NaN;
* :class:`HashCodes` — enum categories as ``hashenum`` int4 (exact: every label of the enum
  type is hashed when the read starts and a type whose labels collide travels as text);
* :class:`TextCodes` — any other category as UTF-8 text.

Each gives the ids a dict lookup of the value's text gives (:meth:`Layout.encode`), bit for
bit: NULL or the empty string is *missing*, a value not in the dictionary *unknown*.

Text values
-----------

The column reader (:mod:`trails.data.columnar`) gets each categorical column of a chunk from
PostgreSQL as one text: the values joined by one separator byte (``\\x1f``, or ``\\x00``
in a ``bytea`` for a column whose values hold ``\\x1f``: text never holds a NUL byte); a
NULL arrives as the empty string. :meth:`TextCodes.ids` finds the values'
boundaries with numpy, gathers them into a fixed-width byte array and looks them up in a
:class:`KeyTable` of the dictionary.

A value longer than every dictionary entry cannot match one, so it is cut to ``width`` (more
bytes than the longest entry, whole 8-byte words) and still comes out unknown. The words of a
value are mixed into one uint64, looked up among the dictionary's, and a match is confirmed
on the words themselves. Dictionaries with entries
longer than :data:`MAX_GATHER_WIDTH` bytes use a dict lookup per value instead (gathering
``rows × width`` bytes would cost more than it saves).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_GATHER_WIDTH = 64  # bytes (8 words); longer dictionary entries: a dict lookup per value


class SeparatorInValues(ValueError):
    """A text value holds the byte that separates values: the buffer cannot be split."""


class TextCodes:
    """Ids of text values: ``values[j]`` → ``ids[j]``; ``missing`` for the empty value (NULL),
    ``unknown`` for any other value not in ``values``."""

    wire = "text"

    def __init__(self, values: Sequence[str], ids: Sequence[int], missing: int, unknown: int):
        encoded = [v.encode("utf-8") for v in values]
        self.missing, self.unknown = int(missing), int(unknown)
        longest = max((len(v) for v in encoded), default=0)
        self.width = -(-(longest + 1) // 8) * 8  # bytes compared: more than any entry, whole words
        self._by_value = dict(zip(encoded, (int(i) for i in ids)))
        if self.width <= MAX_GATHER_WIDTH:
            words = np.array(encoded, dtype=f"S{self.width}").view("<u8").reshape(len(encoded), self.width // 8)
            hashes = _word_hash(words)
            if len(np.unique(hashes)) == len(hashes):
                self._words, self._ids = words, np.asarray(ids, dtype=np.int64)
                self._positions = KeyTable(hashes, np.arange(len(hashes)), -1)
            else:  # two entries share a hash: a dict lookup is exact
                self.width = MAX_GATHER_WIDTH + 1

    def ids(self, joined, rows: int, separator: int = 0) -> np.ndarray:
        """int64 ``(rows,)`` ids of the ``rows`` values ``joined`` holds (bytes-like or str,
        values separated by the byte ``separator``; ``None`` or empty when every value is
        empty).

        Raises:
            SeparatorInValues: when ``joined`` holds more separators than ``rows - 1`` (a
                value contains the separator: read the column with NUL separators).
            ValueError: when it holds fewer.
        """
        if isinstance(joined, str):
            joined = joined.encode("utf-8")
        buffer = np.frombuffer(joined or b"", dtype=np.uint8)
        ends = np.flatnonzero(buffer == separator)
        if rows == 0 or len(ends) != rows - 1:
            if rows == 0 and len(buffer) == 0:
                return np.empty(0, dtype=np.int64)
            if len(ends) > rows - 1:
                raise SeparatorInValues(f"a value holds the separator byte {separator}")
            raise ValueError(f"expected {rows} values, the buffer holds {len(ends) + 1}")
        starts = np.concatenate(([0], ends + 1))
        lengths = np.append(ends, len(buffer)) - starts
        if self.width > MAX_GATHER_WIDTH:
            return self._ids_by_dict(bytes(buffer), lengths, separator)
        return self._ids_by_search(buffer, starts, lengths)

    def _ids_by_search(self, buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        width = self.width
        offsets = np.arange(width)
        padded = np.concatenate((buffer, np.zeros(width, dtype=np.uint8)))
        gathered = padded[starts[:, None] + offsets]
        gathered[offsets >= np.minimum(lengths, width)[:, None]] = 0
        words = gathered.view("<u8")
        at = self._positions.lookup(_word_hash(words))
        found = np.flatnonzero(at >= 0)
        if words.shape[1] > 1:  # a hash of several words: compare the bytes themselves
            found = found[(words[found] == self._words[at[found]]).all(axis=1)]
        out = np.full(len(at), self.unknown, dtype=np.int64)
        out[found] = self._ids[at[found]]
        out[lengths == 0] = self.missing
        return out

    def _ids_by_dict(self, data: bytes, lengths: np.ndarray, separator: int) -> np.ndarray:
        lookup, unknown = self._by_value, self.unknown
        out = np.fromiter((lookup.get(v, unknown) for v in data.split(bytes([separator]))), dtype=np.int64,
                          count=len(lengths))
        out[lengths == 0] = self.missing
        return out


def _word_hash(words: np.ndarray) -> np.ndarray:
    """uint64 ``(n,)`` of uint64 ``(n, k)`` words: the word itself for k = 1 (exact), else a
    multiply-xor mix (equal words give equal hashes; callers compare the words after)."""
    hashes = words[:, 0].copy()
    for j in range(1, words.shape[1]):
        hashes *= np.uint64(0x9E3779B97F4A7C15)
        hashes ^= words[:, j]
    return hashes


class KeyTable:
    """uint64 key → int64 value, looked up for a whole array at once (open addressing with
    linear probing, built and probed with numpy; no Python object per key).

    Args:
        keys: distinct uint64 keys ``(V,)``.
        values: int64 ``(V,)``, ``values[j]`` for ``keys[j]``.
        default: the value of any other key.
    """

    MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key × φ·2⁶⁴
    MAX_SEARCHED = 64  # fewer keys: a binary search of the sorted keys is faster than probing

    def __init__(self, keys: np.ndarray, values: Sequence[int], default: int):
        keys = np.asarray(keys, dtype=np.uint64)
        self.default = int(default)
        if len(keys) <= self.MAX_SEARCHED:
            order = np.argsort(keys)
            self._sorted, self._sorted_values = keys[order], np.asarray(values, dtype=np.int64)[order]
            return
        self._sorted = None
        self.bits = max(4, int(np.ceil(np.log2(max(1, len(keys)) * 4))))  # a load of ≤ 1/4
        starts = self._starts(keys)
        order = np.argsort(starts, kind="stable")
        rank = np.arange(len(keys))
        # keys in the order of their first slot: each takes its first slot or the one after
        # its predecessor's, whichever is later (linear probing, without wrapping around)
        slots = np.maximum.accumulate(starts[order] - rank) + rank
        self.probes = int((slots - starts[order]).max(initial=0)) + 1
        size = (1 << self.bits) + len(keys) + 1
        self._used = np.zeros(size, dtype=bool)
        self._keys = np.zeros(size, dtype=np.uint64)
        self._values = np.full(size, self.default, dtype=np.int64)
        self._used[slots], self._keys[slots] = True, keys[order]
        self._values[slots] = np.asarray(values, dtype=np.int64)[order]

    def _starts(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * self.MULTIPLIER) >> np.uint64(64 - self.bits)).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """int64 ``keys.shape``: the value of each uint64 key, ``default`` for unknown keys."""
        keys = np.asarray(keys, dtype=np.uint64)
        out = np.full(len(keys), self.default, dtype=np.int64)
        if self._sorted is not None:
            if len(self._sorted):
                at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
                found = self._sorted[at] == keys
                out[found] = self._sorted_values[at[found]]
            return out
        pending, slots = np.arange(len(keys)), self._starts(keys)
        for _ in range(self.probes):
            used = self._used[slots]
            hit = used & (self._keys[slots] == keys[pending])
            out[pending[hit]] = self._values[slots[hit]]
            going_on = used & ~hit  # an empty slot ends a key's probe: it is not in the table
            pending, slots = pending[going_on], slots[going_on] + 1
            if not len(pending):
                break
        return out


class NumberCodes:
    """Integer categories (dictionary values are their text) arriving as float8, NULL as NaN."""

    wire = "float8"

    def __init__(self, values: Sequence[str], ids: Sequence[int], missing: int, unknown: int):
        self.missing = int(missing)
        self._table = KeyTable(np.array([int(v) for v in values], dtype=np.int64).view(np.uint64), ids, unknown)

    def ids(self, x: np.ndarray) -> np.ndarray:
        """int64 ids of float64 values ``x`` (integers, or NaN: missing)."""
        missing = np.isnan(x)
        out = self._table.lookup(np.where(missing, 0, x).astype(np.int64).view(np.uint64))
        out[missing] = self.missing
        return out


class HashCodes:
    """Enum categories arriving as int4 ``hashenum`` values, NULL as ``null_hash``.

    ``hashes`` maps every label of the enum type now (the dictionary's and any added since) to
    its hash; labels in ``values`` get their ids, the others are unknown.

    Raises:
        ValueError: when two labels, or a label and ``null_hash``, share a hash (the column
            must travel as text).
    """

    wire = "hash4"

    def __init__(self, values: Sequence[str], ids: Sequence[int], missing: int, unknown: int,
                 hashes: dict, null_hash: int):
        if len(set(hashes.values()) | {null_hash}) != len(hashes) + 1:
            raise ValueError("enum labels share a hash")
        by_label = dict(zip(values, (int(i) for i in ids)))
        labels = list(hashes)
        keys = np.array([hashes[v] for v in labels] + [null_hash], dtype=np.int64).view(np.uint64)
        self._table = KeyTable(keys, [by_label.get(v, unknown) for v in labels] + [missing], unknown)

    def ids(self, hashes: np.ndarray) -> np.ndarray:
        """int64 ids of int32 ``hashes``."""
        return self._table.lookup(hashes.astype(np.int64).view(np.uint64))
