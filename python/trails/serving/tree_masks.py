"""A LightGBM forest as bit masks over its leaves: one row's trees answered by a few array
operations instead of a walk down each tree (QuickScorer's idea, Lucchese et al., SIGIR 2015).

Number each tree's leaves left to right. A split node that sends a row right rules out every
leaf of its left subtree; the leaf the row reaches is the leftmost leaf no such node rules
out — whatever the order in which the nodes are looked at. So, per field, every value a row
can hold falls in one of a few *behaviours* (which of the field's split nodes send it right):
each behaviour is one row of a mask table (``(R, T)``, a bit per leaf of each of the ``T``
trees) holding the AND of the masks of those nodes. A row's leaves are then the lowest set bit
of the AND of its fields' mask rows; its raw score the sum of those leaves' values.

The behaviours of a field, as LightGBM 4 decides (``Tree::NumericalDecision``,
``Tree::CategoricalDecision``, with the row's float32 features read as doubles):

* **categorical** (``==`` splits): a category code is left of a node when it is in the node's
  set. A code in no set, a negative one and NaN go right at every node of the field: one
  *default* behaviour; each code named by some set has its own.
* **numeric** (``<=`` splits): left when ``x <= threshold``, except where the node's missing
  type says otherwise — NaN is read as 0.0 by a node whose missing type is not NaN, and a node
  of missing type *Zero* (or NaN) sends zero (or NaN) its default way. A dense row's value of
  |x| ≤ float32(1e-35) reaches the trees as 0.0 (LightGBM drops it as a sparse zero). So the
  field's sorted distinct thresholds cut the line into intervals (a behaviour each, the index
  found by bisection), plus one for NaN and, when some node has missing type Zero, one for zero.

:meth:`MaskedForest.build` returns None for a forest this cannot express — more than 64 leaves
a tree, linear trees, an objective other than regression / binary / multiclass, averaged
output (random forests), a field split both as a category and as a number, a split on a
feature beyond the row — for one whose table would exceed :data:`MAX_TABLE_BYTES`, and for any
failure while building; the caller keeps LightGBM's own prediction. It also checks itself
against the booster on :data:`PROBE_ROWS` rows mixing every behaviour's value and returns None
on any disagreement beyond :data:`AGREEMENT`: a LightGBM whose rules differ from the above
shows there, unless only rows the probes miss differ.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (``1e-35f``, a float32 read as a double): a dense row's value
of |x| at most this reaches the trees as 0.0."""

FLOAT_VIEWS = {4: (np.float32, np.int32, 23, 127), 8: (np.float64, np.int64, 52, 1023)}
"""Per mask width in bytes: the float a power of two is exact in, the int of its bits, the
shift to its exponent field and the exponent's bias (see :meth:`MaskedForest._slots`)."""

MAX_TABLE_BYTES = 32 << 20
"""The largest mask table built (rows × trees × 4 or 8 bytes; a backend keeps up to
:data:`trails.serving.scorer.CACHE_SIZE` models)."""

MAX_EXPONENT = 709.0
"""Below ``log(float max)``: ``exp`` of more overflows (the probability is then 0.0)."""

LEAF_COUNTS = re.compile(r"^num_leaves=(\d+)$", re.MULTILINE)
"""A tree's leaf count in a LightGBM model string."""

AGREEMENT = 1e-9
"""The largest difference from LightGBM's prediction tolerated on the probe rows."""

PROBE_ROWS = 256
"""Rows :meth:`MaskedForest.build` checks against the booster's own prediction."""

CHUNK_ROWS = 256
"""Rows scored together by :meth:`MaskedForest.raw`, so that a chunk's masks stay in the CPU's
cache (frappe, 365 trees: 365 KB a chunk); all rows at once ran several times slower here."""

NO_CATEGORIES = np.empty(0, dtype=np.int64)

MAX_LEAVES = 64
"""The widest tree the masks hold (a uint64 a tree; up to 32 leaves, a uint32)."""

MISSING_TYPES = ("None", "Zero", "NaN", "NaN")
"""LightGBM's missing type, bits 2–3 of a node's ``decision_type`` (bit 0: categorical, bit 1:
default left)."""


@dataclass
class _Node:
    """One split node of one tree: its field, rule, and the mask of leaves it keeps when the
    row goes right (every leaf but those of its left subtree)."""

    tree: int
    field: int
    categorical: bool
    threshold: float  # numeric splits
    categories: np.ndarray  # categorical splits: the codes sent left, int64 ascending
    missing: str  # "None", "Zero", "NaN"
    default_left: bool
    mask: int

    def goes_right(self, x: float) -> bool:
        """Whether a row whose feature is ``x`` (a double; NaN allowed) goes right at this
        numeric split (categorical splits: see :func:`_apply_nodes`)."""
        if (math.isnan(x) and self.missing != "NaN") or abs(x) <= ZERO_THRESHOLD:
            x = 0.0
        if (self.missing == "Zero" and x == 0.0) or (self.missing == "NaN" and math.isnan(x)):
            return not self.default_left
        return not x <= self.threshold


def _parse_model(model_string: str) -> tuple[dict, list[dict]]:
    """(header, trees) of LightGBM's model string: ``key=value`` lines before the first tree,
    and per tree its ``key=value`` lines (``Tree=i`` to the next blank line)."""
    header, trees, current = {}, [], None
    for line in model_string.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line.startswith("end of trees"):
            break
        elif "=" in line:
            key, _, value = line.partition("=")
            (header if current is None else current)[key] = value
        elif not line:
            current = None
        elif current is None:
            header[line] = ""  # a flag, e.g. average_output
    return header, trees


def _numbers(tree: dict, key: str, dtype) -> np.ndarray:
    text = tree.get(key, "")
    return np.array(text.split(), dtype=dtype) if text else np.empty(0, dtype=dtype)


def _leaves_and_nodes(tree: dict, index: int) -> tuple[list[float] | None, list[_Node]]:
    """One parsed tree's leaf values left to right (None for a linear tree), and its split nodes
    with their masks."""
    leaf_values = _numbers(tree, "leaf_value", np.float64)
    n_leaves = int(tree.get("num_leaves", 1))
    if tree.get("is_linear", "0") != "0" or len(leaf_values) != n_leaves:
        return None, []
    if n_leaves == 1:
        return [float(leaf_values[0])], []
    split_feature = _numbers(tree, "split_feature", np.int64).tolist()
    thresholds = _numbers(tree, "threshold", np.float64).tolist()
    decision = _numbers(tree, "decision_type", np.int64).tolist()
    left, right = _numbers(tree, "left_child", np.int64).tolist(), _numbers(tree, "right_child", np.int64).tolist()
    boundaries = _numbers(tree, "cat_boundaries", np.int64) * 32
    bits = np.unpackbits(_numbers(tree, "cat_threshold", np.uint32).view(np.uint8), bitorder="little")
    values, nodes, full = [], [], (1 << n_leaves) - 1

    def walk(child: int) -> tuple[int, int]:  # the subtree's leaves: [first, end) in left-to-right order
        if child < 0:
            values.append(float(leaf_values[~child]))
            return len(values) - 1, len(values)
        first, middle = walk(left[child])
        _, end = walk(right[child])
        left_leaves = ((1 << middle) - 1) ^ ((1 << first) - 1)
        kind = decision[child]
        categorical = bool(kind & 1)
        categories = NO_CATEGORIES
        if categorical:
            at = int(thresholds[child])
            categories = np.flatnonzero(bits[boundaries[at]:boundaries[at + 1]])
        nodes.append(_Node(index, split_feature[child], categorical, 0.0 if categorical else thresholds[child],
                           categories, MISSING_TYPES[(kind >> 2) & 3], bool(kind & 2), full ^ left_leaves))
        return first, end

    walk(0)
    return values, nodes


class MaskedForest:
    """The forest's mask table and leaf values (see the module docstring); build with :meth:`build`.

    Attributes:
        n_fields: features a row holds.
        n_classes: raw scores a row gets (trees ``i`` with ``i % n_classes == k`` add to class ``k``).
    """

    def __init__(self, n_fields: int, n_classes: int, objective: tuple[str, float], table: np.ndarray,
                 leaf_values: np.ndarray, fields: list):
        self.n_fields, self.n_classes, self.objective = n_fields, n_classes, objective
        self.table = table
        self.n_trees, width = leaf_values.shape
        # a leaf's value found from its bit: the lowest set bit 2**k of a mask, as a float, has
        # exponent field EXPONENT_BIAS + k; leaf k of tree t is at t·bits + k
        bits = 8 * table.dtype.itemsize
        float_type, int_type, self.exponent_shift, bias = FLOAT_VIEWS[table.dtype.itemsize]
        self.float_type, self.int_type = float_type, int_type
        slots = np.zeros((self.n_trees, bits), dtype=np.float64)
        slots[:, :width] = leaf_values
        self.slot_values = slots.ravel()
        self.tree_slots = np.arange(self.n_trees, dtype=int_type) * bits - bias
        self.fields = fields  # per field with splits: (index, kind, lookup); see _field_lookup
        self.full = np.full(self.n_trees, np.iinfo(table.dtype).max, dtype=table.dtype)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, booster, model_string: str, n_fields: int, num_iteration: int = -1) -> "MaskedForest | None":
        """The masked form of ``model_string`` — the trees of ``booster`` (a LightGBM Booster
        over ``n_fields`` float features), or of its first ``num_iteration`` rounds — or None
        where it cannot be expressed, would be too large, disagrees with the booster on probe
        rows, or fails to build (see the module docstring). Never raises."""
        if any(int(count) > MAX_LEAVES for count in LEAF_COUNTS.findall(model_string)):
            return None  # found without parsing the trees
        try:
            return cls._build(booster, model_string, n_fields, num_iteration)
        except Exception:  # noqa: BLE001 — anything unexpected: LightGBM predicts instead
            return None

    @classmethod
    def _build(cls, booster, model_string: str, n_fields: int, num_iteration: int) -> "MaskedForest | None":
        header, trees = _parse_model(model_string)
        objective = _objective(header.get("objective", ""))
        n_classes = int(header.get("num_tree_per_iteration", 1))
        if objective is None or not trees or "average_output" in header:
            return None
        width = max(int(tree.get("num_leaves", 1)) for tree in trees)
        dtype = np.uint32 if width <= 32 else np.uint64
        leaf_values = np.zeros((len(trees), width), dtype=np.float64)
        by_field: dict[int, list[_Node]] = {}
        for index, tree in enumerate(trees):
            values, nodes = _leaves_and_nodes(tree, index)
            if values is None:  # a linear tree
                return None
            leaf_values[index, :len(values)] = values
            for node in nodes:
                by_field.setdefault(node.field, []).append(node)
        if max(by_field, default=-1) >= n_fields:
            return None
        behaviours, fields = [], []
        for field in sorted(by_field):
            lookup, probes = _field_lookup(by_field[field], len(behaviours))
            if lookup is None:
                return None
            fields.append((field, *lookup))
            behaviours.extend(probes)
        row_bytes = len(trees) * np.dtype(dtype).itemsize
        if (len(behaviours) + 1) * row_bytes > MAX_TABLE_BYTES:
            return None
        table = np.full((len(behaviours), len(trees)), np.iinfo(dtype).max, dtype=dtype)
        for field, kind, lookup in fields:
            _apply_nodes(table, by_field[field], kind, lookup, behaviours, dtype)
        forest = cls(n_fields, n_classes, objective, table, leaf_values, fields)
        return forest if forest._agrees(booster, behaviours, num_iteration) else None

    def _agrees(self, booster, behaviours: list, num_iteration: int = -1) -> bool:
        """Whether this forest predicts what ``booster`` does on probe rows: random mixes of
        every behaviour's value, NaN rows and zero rows."""
        generator = np.random.default_rng(0)
        probes = np.zeros((PROBE_ROWS, self.n_fields), dtype=np.float32)
        by_field: dict[int, list[float]] = {}
        for field, value in behaviours:
            by_field.setdefault(field, []).append(value)
        for field, values in by_field.items():
            probes[:, field] = generator.choice(np.array(values + [np.nan, 0.0, -1.0], dtype=np.float32), PROBE_ROWS)
        probes[0], probes[1] = np.nan, 0.0
        expected = np.asarray(booster.predict(probes, num_iteration=num_iteration),
                              dtype=np.float64).reshape(PROBE_ROWS, -1)
        return bool(np.allclose(self.predict(probes).reshape(PROBE_ROWS, -1), expected, rtol=0, atol=AGREEMENT))

    # ------------------------------------------------------------------ predicting
    def row_raw(self, features) -> np.ndarray:
        """Raw scores float64 ``(n_classes,)`` of one row's features (a sequence of ``n_fields``
        floats, NaN for missing)."""
        rows = [_behaviour_of(kind, lookup, features[field]) for field, kind, lookup in self.fields]
        masks = np.bitwise_and.reduce(self.table.take(rows, axis=0), axis=0) if rows else self.full
        values = self.slot_values.take(self._slots(masks))
        if self.n_classes == 1:
            return np.array([values.sum()])
        return values.reshape(-1, self.n_classes).sum(axis=0)

    def row_predict(self, features) -> list:
        """``Booster.predict`` of one row (see :meth:`row_raw`), as a list of floats: ``[value]``
        for a regression, ``[P(positive)]`` for binary, the class probabilities for multiclass."""
        raw = self.row_raw(features).tolist()
        kind, sigmoid = self.objective
        if kind == "regression":
            return raw
        if kind == "binary":
            exponent = -sigmoid * raw[0]
            return [1.0 / (1.0 + math.exp(exponent)) if exponent < MAX_EXPONENT else 0.0]
        top = max(raw)
        weights = [math.exp(value - top) for value in raw]
        total = sum(weights)
        return [weight / total for weight in weights]

    def raw(self, features: np.ndarray) -> np.ndarray:
        """Raw scores float64 ``(B, n_classes)`` of features float32 ``(B, n_fields)``, in chunks
        of :data:`CHUNK_ROWS` rows (so that a chunk's masks stay in the CPU's cache)."""
        return np.concatenate([self._chunk_raw(features[start:start + CHUNK_ROWS])
                               for start in range(0, len(features), CHUNK_ROWS)] or
                              [np.empty((0, self.n_classes), dtype=np.float64)])

    def _chunk_raw(self, features: np.ndarray) -> np.ndarray:
        masks = np.broadcast_to(self.full, (len(features), self.n_trees)).copy()
        for field, kind, lookup in self.fields:
            np.bitwise_and(masks, self.table.take(_behaviours(kind, lookup, features[:, field]), axis=0), out=masks)
        values = self.slot_values.take(self._slots(masks))
        return values.reshape(len(features), -1, self.n_classes).sum(axis=1)

    def _slots(self, masks: np.ndarray) -> np.ndarray:
        """Where in :attr:`slot_values` each tree's leaf is: from its mask's lowest set bit
        (each mask has one: a tree always keeps a leaf), read off the bit's float exponent."""
        lowest = masks & -masks
        exponents = lowest.astype(self.float_type).view(self.int_type)
        exponents >>= self.exponent_shift
        exponents += self.tree_slots
        return exponents

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """LightGBM's transformed output of raw scores ``(..., n_classes)``: the value for a
        regression, P(positive) for binary, class probabilities for multiclass — shaped as
        ``Booster.predict`` gives them (``(B,)``, or ``(B, C)`` for multiclass)."""
        kind, sigmoid = self.objective
        if kind == "regression":
            return raw[..., 0]
        if kind == "binary":
            with np.errstate(over="ignore"):  # exp → inf: P = 0, as LightGBM gives it
                return 1.0 / (1.0 + np.exp(-sigmoid * raw[..., 0]))
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``Booster.predict(features)`` of features float32 ``(B, n_fields)``."""
        return self.transform(self.raw(features))


def _objective(text: str) -> tuple[str, float] | None:
    """(kind, sigmoid) of LightGBM's objective line, or None for one not handled here."""
    words = text.split()
    if not words:
        return None
    options = dict(word.split(":", 1) for word in words[1:] if ":" in word)
    if words[0] in ("regression", "regression_l2") and len(words) == 1:
        return "regression", 1.0
    if words[0] == "binary" and set(options) <= {"sigmoid"}:
        return "binary", float(options.get("sigmoid", 1.0))
    if words[0] in ("multiclass", "softmax") and set(options) <= {"num_class"}:
        return "multiclass", 1.0
    return None


def _field_lookup(nodes: list[_Node], first_row: int):
    """((kind, lookup), [(field, probe value) per behaviour]) of one field's nodes; the
    behaviours' rows start at ``first_row``. None for a field this cannot express.

    kind "cat": lookup ``(codes, default_row, table)`` — ``codes[c]`` the row of code ``c``,
    ``table`` the same as an int64 array with the default row appended;
    kind "num": lookup ``(thresholds, first_row, nan_row, zero_row or None, thresholds as an
    array)``."""
    field = nodes[0].field
    if len({node.categorical for node in nodes}) > 1:
        return None, []
    if nodes[0].categorical:
        named = np.unique(np.concatenate([node.categories for node in nodes])).tolist()
        codes = [first_row] * (named[-1] + 1 if named else 0)  # first_row: the default behaviour
        for offset, code in enumerate(named, start=1):
            codes[code] = first_row + offset
        table = np.asarray(codes + [first_row], dtype=np.int64)
        return ("cat", (codes, first_row, table)), [(field, -1.0)] + [(field, float(code)) for code in named]
    thresholds = sorted({node.threshold for node in nodes})
    # interval j: thresholds[:j] < x <= thresholds[j:]; its probe a value inside it
    probes = [thresholds[0] - 1.0] + [_above(t, thresholds[j + 1] if j + 1 < len(thresholds) else None)
                                      for j, t in enumerate(thresholds)]
    nan_row = first_row + len(probes)
    behaviours = [(field, p) for p in probes] + [(field, math.nan)]
    zero_row = None
    if any(node.missing == "Zero" for node in nodes):
        zero_row = nan_row + 1
        behaviours.append((field, 0.0))
    return ("num", (thresholds, first_row, nan_row, zero_row, np.asarray(thresholds))), behaviours


def _above(threshold: float, next_threshold: float | None) -> float:
    """A float32-representable value just above ``threshold`` and at most ``next_threshold``
    (+inf above +inf: no value lies there, the interval is never looked up)."""
    if threshold == math.inf:
        return math.inf
    value = float(np.nextafter(np.float32(threshold), np.float32(np.inf)))
    while value <= threshold:
        value = float(np.nextafter(np.float32(value), np.float32(np.inf)))
    return value if next_threshold is None or value <= next_threshold else next_threshold


def _apply_nodes(table: np.ndarray, nodes: list[_Node], kind: str, lookup, behaviours: list, dtype) -> None:
    """AND each node's mask into the behaviours of its field that it sends right, in
    ``table`` (``(R, T)``: a row per behaviour, a column per tree)."""
    if kind == "cat":
        codes, default, _ = lookup
        rows = np.asarray(codes, dtype=np.int64) - default  # the field's rows: [default, end)
        end = default + 1 + int(np.count_nonzero(rows))
        for node in nodes:
            column = table[default:end, node.tree]
            left = rows[node.categories]
            kept = column[left].copy()  # the node sends its categories left: their masks stay
            column &= dtype(node.mask)
            column[left] = kept
        return
    thresholds, first, nan_row, zero_row, _ = lookup
    position = {threshold: index for index, threshold in enumerate(thresholds)}
    end = first + len(thresholds) + 1
    for node in nodes:
        mask = dtype(node.mask)
        table[first + position[node.threshold] + 1:end, node.tree] &= mask  # intervals above its threshold
        for special in (nan_row, zero_row):
            if special is not None and node.goes_right(behaviours[special][1]):
                table[special, node.tree] &= mask


def _behaviour_of(kind: str, lookup, x: float) -> int:
    """The mask-table row of one feature value ``x`` (see :func:`_field_lookup`)."""
    if kind == "cat":
        codes, default, _ = lookup
        if x != x or x <= -1.0 or x >= len(codes):  # NaN, negative or a code no set names
            return default
        return codes[int(x)]  # C's static_cast<int>: toward zero
    thresholds, first, nan_row, zero_row, _ = lookup
    if x != x:
        return nan_row
    if -ZERO_THRESHOLD <= x <= ZERO_THRESHOLD:  # reaches the trees as 0.0
        return zero_row if zero_row is not None else first + bisect_left(thresholds, 0.0)
    return first + bisect_left(thresholds, x)


def _behaviours(kind: str, lookup, x: np.ndarray) -> np.ndarray:
    """:func:`_behaviour_of` of a column of values float32 ``(B,)``: rows int64 ``(B,)``."""
    x = x.astype(np.float64)
    if kind == "cat":
        codes, _, table = lookup
        code = np.trunc(np.nan_to_num(x, nan=-1.0))
        code[(code < 0) | (code > len(codes))] = len(codes)
        return table[code.astype(np.int64)]
    _, first, nan_row, zero_row, thresholds = lookup
    zero = np.abs(x) <= ZERO_THRESHOLD
    x[zero] = 0.0  # reaches the trees as 0.0
    rows = first + np.searchsorted(thresholds, x, side="left")
    if zero_row is not None:
        rows[zero] = zero_row
    rows[np.isnan(x)] = nan_row
    return rows
