"""A gradient-boosted trees configuration (:class:`GbdtConfig`), its text, and the portfolio.

A configuration is seven LightGBM knobs; its text lists them as ``key=value`` pairs, every key
once, in any order (:data:`TEXT_KEYS` names them)::

    leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,cat=10

``cat`` may be left out (it is then LightGBM's default, 10: what a configuration written before
the key existed trained with).

A candidate's text adds the family's prefix (``gbdt:leaves=31,...``,
:class:`~trails.families.base.Candidate`).

The :func:`portfolio` is a small fixed list in the spirit of zero-shot portfolios, chosen by
measurement on frappe, uci_diabetes and the three tables of ``shared/data/tabular`` (LightGBM
alone, early-stopped on the valid split: ``exps/README.md``): its first three entries are
complementary — a fast rate that converges within a short rung on large tables of ids, larger
trees at a slow rate for mixed tables, and a regularised one with smoothed categories for
many-valued categorical fields — then it spreads out (small trees, noisy labels, large capacity),
so that whatever ``k`` a run affords, it gets the most useful ``k`` first; the configurations a
race has no slot for wait as reserves for the time its winner leaves
(:mod:`trails.selection.entrants`), as do the :func:`variations` of the best one. Every candidate is
early-stopped on the decision sample (:mod:`trails.families.gbdt_training`), so a fast rate
cannot win by overfitting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from trails.errors import TrailsError

TEXT_KEYS = {"num_leaves": "leaves", "learning_rate": "lr", "min_child_samples": "min_child",
             "feature_fraction": "ff", "bagging_fraction": "bf", "lambda_l2": "l2", "cat_smooth": "cat"}
"""Field of :class:`GbdtConfig` → its key in the text form."""

OPTIONAL_KEYS = {"cat_smooth": 10.0}
"""Fields a text may leave out → the value it then means."""

PAIR_SEPARATOR = ","
KEY_VALUE_SEPARATOR = "="
MIN_LEAVES = 2
"""A tree with fewer leaves than this does not split."""

EXAMPLE_TEXT = "leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,cat=10"


@dataclass(frozen=True)
class GbdtConfig:
    """One gradient-boosted trees configuration (frozen: hashable, a candidate's config).

    Attributes:
        num_leaves: most leaves of one tree (LightGBM ``num_leaves``), ≥ 2.
        learning_rate: shrinkage of each tree (``learning_rate``), > 0.
        min_child_samples: fewest train rows in a leaf (``min_data_in_leaf``), ≥ 1.
        feature_fraction: share of the fields each tree may split on (``feature_fraction``,
            column subsampling), in (0, 1].
        bagging_fraction: share of the rows each round trains on (``bagging_fraction``, row
            subsampling, redrawn every round when < 1), in (0, 1].
        lambda_l2: L2 penalty on the leaf values (``lambda_l2``), ≥ 0.
        cat_smooth: smoothing of a categorical split's per-category statistics toward the
            whole (``cat_smooth``, LightGBM's default 10), ≥ 0: larger values keep rare
            categories of a many-valued field from being split on noise.

    Raises:
        TrailsError: for a value out of its range (the message names it and the range).
    """

    num_leaves: int = 31
    learning_rate: float = 0.1
    min_child_samples: int = 20
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    lambda_l2: float = 0.0
    cat_smooth: float = 10.0

    def __post_init__(self):
        for item in fields(self):  # normalise the types: GbdtConfig(l2=1) is the parsed "l2=1"
            kind = int if item.type in (int, "int") else float
            object.__setattr__(self, item.name, kind(getattr(self, item.name)))
        checks = [("num_leaves", self.num_leaves >= MIN_LEAVES, f">= {MIN_LEAVES}"),
                  ("learning_rate", self.learning_rate > 0, "> 0"),
                  ("min_child_samples", self.min_child_samples >= 1, ">= 1"),
                  ("feature_fraction", 0 < self.feature_fraction <= 1, "in (0, 1]"),
                  ("bagging_fraction", 0 < self.bagging_fraction <= 1, "in (0, 1]"),
                  ("lambda_l2", self.lambda_l2 >= 0, ">= 0"),
                  ("cat_smooth", self.cat_smooth >= 0, ">= 0")]
        for name, valid, expected in checks:
            if not valid:
                raise TrailsError(f"the value of {TEXT_KEYS[name]} ({name}) is {getattr(self, name)}, "
                                  f"but must be {expected}", hint=f"e.g. gbdt:{EXAMPLE_TEXT}")

    @property
    def text(self) -> str:
        """``"leaves=31,lr=0.1,min_child=20,ff=0.8,bf=0.8,l2=1,cat=10"``: whole numbers without a
        fraction, others as Python's shortest round-trip repr (:func:`parse_config` reads it
        back to an equal config)."""
        return PAIR_SEPARATOR.join(f"{key}{KEY_VALUE_SEPARATOR}{_number_text(getattr(self, name))}"
                                   for name, key in TEXT_KEYS.items())

    def lightgbm_params(self) -> dict:
        """These knobs as LightGBM parameters (row bagging redrawn every round when
        ``bagging_fraction`` < 1, off otherwise)."""
        return {"num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                "min_data_in_leaf": self.min_child_samples, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
                "lambda_l2": self.lambda_l2, "cat_smooth": self.cat_smooth}


def _number_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def parse_config(text: str) -> GbdtConfig:
    """The configuration ``text`` names (see the module docstring; no ``gbdt:`` prefix).

    Raises:
        TrailsError: for a pair without ``=``, an unknown or repeated key, a missing key (but
            ``cat``), a value that is not a number, or one out of its range; the HINT shows a valid text.
    """
    by_key = {key: name for name, key in TEXT_KEYS.items()}
    hint = f"a gbdt configuration lists {', '.join(TEXT_KEYS.values())}, e.g. gbdt:{EXAMPLE_TEXT}"
    values: dict = {}
    for pair in str(text).split(PAIR_SEPARATOR):
        key, separator, value = (part.strip() for part in pair.partition(KEY_VALUE_SEPARATOR))
        if not separator or key not in by_key or by_key[key] in values:
            problem = ("no key=value pair" if not separator else "an unknown key" if key not in by_key
                       else "a repeated key")
            raise TrailsError(f"bad gbdt configuration {text!r}: {pair.strip()!r} is {problem}", hint=hint)
        try:
            values[by_key[key]] = float(value)
        except ValueError:
            raise TrailsError(f"bad gbdt configuration {text!r}: {key} is not a number ({value!r})",
                              hint=hint) from None
    values = {**OPTIONAL_KEYS, **values}
    missing = [key for name, key in TEXT_KEYS.items() if name not in values]
    if missing:
        raise TrailsError(f"bad gbdt configuration {text!r}: it lacks {', '.join(missing)}", hint=hint)
    for name in ("num_leaves", "min_child_samples"):
        if not values[name].is_integer():
            raise TrailsError(f"bad gbdt configuration {text!r}: {TEXT_KEYS[name]} must be a whole number",
                              hint=hint)
    return GbdtConfig(**values)


PORTFOLIO = (
    # fast: mid-size trees at a high rate; converges within a rung on large tables of ids
    # (frappe: 0.9866 valid AUC in 377 rounds, where 15 leaves at 0.1 needed ~2,300)
    GbdtConfig(31, 0.3, 20, 0.9, 1.0, 1.0),
    # larger trees at a slow rate: the best given time on mixed tables (movielens, diamonds)
    GbdtConfig(63, 0.05, 20, 0.8, 0.8, 1.0),
    # regularised for many-valued categorical fields: categories smoothed (cat=50), 50 rows per
    # leaf, strong L2, 60 % of the fields per tree (uci_diabetes' diagnosis codes)
    GbdtConfig(31, 0.05, 50, 0.6, 0.8, 10.0, 50.0),
    # small trees at LightGBM's default rate, no subsampling (FLAML's low-cost start)
    GbdtConfig(15, 0.1, 20),
    # heavily regularised, for noisy labels: half the fields per tree, 100 rows per leaf
    GbdtConfig(31, 0.03, 100, 0.5, 0.7, 10.0),
    # large capacity for big tables
    GbdtConfig(127, 0.05, 10, 0.7, 0.7, 3.0),
    # very small trees, for small or nearly additive tables
    GbdtConfig(7, 0.1, 20, 0.8),
    # the heavily regularised one with smoothed categories: the best valid score alone on
    # uci_diabetes and fertility (exps/results/gbdt_portfolio.csv), but slow to converge
    GbdtConfig(31, 0.03, 100, 0.5, 0.7, 10.0, 50.0),
    # larger trees at a slow rate, categories smoothed
    GbdtConfig(63, 0.05, 20, 0.8, 0.8, 1.0, 50.0),
    # very large trees at a slow rate, for very large tables
    GbdtConfig(255, 0.03, 20, 0.8, 0.8, 1.0),
)
"""The fixed portfolio, most reliable first (see the module docstring)."""


def portfolio(k: int) -> list[GbdtConfig]:
    """The first ``k`` configurations of :data:`PORTFOLIO` (all of them when ``k`` exceeds
    its length); the same list at every call.

    Raises:
        TrailsError: for ``k`` < 0.
    """
    if int(k) < 0:
        raise TrailsError(f"the value of k is {k}, but must be k >= 0")
    return list(PORTFOLIO[:int(k)])


MIN_LEARNING_RATE = 0.005
"""The slowest rate :func:`variations` goes to."""

MIN_FEATURE_FRACTION = 0.3
"""The smallest share of the fields per tree :func:`variations` goes to."""


def variations(config: GbdtConfig) -> list[GbdtConfig]:
    """Configurations next to ``config`` for a race that has converged with time left, most
    promising first: half the learning rate (early-stopped, a slower rate usually ends a little
    better in about twice the rounds), then more regularisation one knob at a time — half the
    leaves, twice the rows per leaf, 70 % of the share of fields per tree, ten times the L2
    penalty (at least 1). None grows a round's trees or the booster's memory, so a variation
    fits wherever ``config`` did (``max_params``, memory). Steps that would leave a knob's range
    (a rate below :data:`MIN_LEARNING_RATE`, fewer than 4 leaves, fewer fields than
    :data:`MIN_FEATURE_FRACTION`, more rows per leaf than 1,000, an L2 penalty over 1,000) are
    left out."""
    steps = [("learning_rate", round(config.learning_rate / 2, 6), config.learning_rate / 2 >= MIN_LEARNING_RATE),
             ("num_leaves", config.num_leaves // 2, config.num_leaves // 2 >= 4),
             ("min_child_samples", config.min_child_samples * 2, config.min_child_samples * 2 <= 1000),
             ("feature_fraction", round(config.feature_fraction * 0.7, 4),
              config.feature_fraction * 0.7 >= MIN_FEATURE_FRACTION),
             ("lambda_l2", max(1.0, config.lambda_l2 * 10), config.lambda_l2 * 10 <= 1000)]
    return [dataclasses.replace(config, **{name: value}) for name, value, fits in steps if fits]


BINARY_OUTPUTS = 2
"""A binary task's outputs: two, but one tree per round (the log-odds of the positive class)."""


def trees_per_round(n_outputs: int) -> int:
    """Trees one boosting round adds: one per class for a multiclass task, else one."""
    return int(n_outputs) if int(n_outputs) > BINARY_OUTPUTS else 1


def round_nodes(config: GbdtConfig, n_outputs: int) -> int:
    """The most nodes one boosting round of ``config`` adds: ``trees per round ×
    (2·num_leaves − 1)`` (splits and leaves of full trees)."""
    return trees_per_round(n_outputs) * (2 * config.num_leaves - 1)


def round_cost(config: GbdtConfig) -> float:
    """A relative cost of one boosting round of ``config`` on a given table, for ranking only:
    leaves × share of fields × share of rows (histogram building and split finding grow with
    each)."""
    return config.num_leaves * config.feature_fraction * config.bagging_fraction


def costliest(configs: list[GbdtConfig]) -> GbdtConfig:
    """The configuration of ``configs`` (not empty) whose round costs most (:func:`round_cost`)."""
    return max(configs, key=round_cost)


HISTOGRAM_BIN_BYTES = 24
"""LightGBM's histogram entry: a gradient sum and a hessian sum (doubles) and a count."""

ROW_BYTES_PER_TREE = 16
"""Per row and tree of a round: the running score (double), gradient and hessian (floats)."""


def booster_bytes(config: GbdtConfig, rows: int, n_fields: int, n_outputs: int, max_bin: int = 255) -> int:
    """An estimate of the memory one training booster of ``config`` needs on a table of
    ``rows`` train rows and ``n_fields`` fields, beyond the binned train set every candidate
    shares: its per-row scores, gradients and hessians, and a histogram of every field's bins
    for each leaf (LightGBM's histogram pool)."""
    per_round = trees_per_round(n_outputs)
    return int(rows * per_round * ROW_BYTES_PER_TREE
               + config.num_leaves * n_fields * (max_bin + 1) * HISTOGRAM_BIN_BYTES)


def fitting(configs: list[GbdtConfig], rows: int, n_fields: int, n_outputs: int,
            limit_bytes: int) -> tuple[list[GbdtConfig], list[tuple[GbdtConfig, int]]]:
    """(configurations whose :func:`booster_bytes` fit in ``limit_bytes``, in order; the others
    with their estimate)."""
    fits, skipped = [], []
    for config in configs:
        need = booster_bytes(config, rows, n_fields, n_outputs)
        if need <= limit_bytes:
            fits.append(config)
        else:
            skipped.append((config, need))
    return fits, skipped
