"""The MLP search space: ``layers`` hidden layers, each with a width from ``widths``.

An architecture ("arch") is a tuple of hidden widths, first layer first, e.g. ``(8, 16, 32, 64)``;
its text form is ``"8-16-32-64"``. With the default 4 layers × 20 widths the space holds
20^4 = 160,000 archs. Archs are numbered 0 … size−1 in lexicographic order of their width
*indices* (first layer most significant), which is the order :meth:`SearchSpace.enumerate` yields.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from trails.errors import TrailsError

Arch = tuple[int, ...]

# bounds on an arch read from text outside any space (a request to the refinement service)
MAX_LAYERS = 64
MAX_WIDTH = 65536


def arch_text(arch: Sequence[int]) -> str:
    """The text form of an arch: ``(8, 16, 32, 64)`` → ``"8-16-32-64"``."""
    return "-".join(str(int(width)) for width in arch)


def parse_arch(text: str, bounded: bool = True) -> Arch:
    """Inverse of :func:`arch_text`: ``"8-16-32-64"`` → ``(8, 16, 32, 64)``.

    Raises:
        TrailsError (a ValueError): when ``text`` is not integers joined by ``-``, or, when
        ``bounded``, not 1..``MAX_LAYERS`` of them each 1..``MAX_WIDTH``.
    """
    try:
        arch = tuple(int(part) for part in str(text).strip().split("-"))
    except ValueError:
        raise TrailsError(f"cannot read arch {text!r}: expected widths joined by '-', e.g. '8-16-32-64'") from None
    max_layers, max_width = MAX_LAYERS, MAX_WIDTH
    if bounded and (not 1 <= len(arch) <= max_layers or not all(1 <= width <= max_width for width in arch)):
        raise TrailsError(f"arch {text!r} must have 1 to {max_layers} widths, each 1 to {max_width}")
    return arch


DEFAULT_LAYERS = 4
DEFAULT_WIDTHS = (8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 384, 512)


class SearchSpace:
    """All MLPs with ``layers`` hidden layers whose widths are drawn from ``widths``.

    Args:
        layers: number of hidden layers, ≥ 1.
        widths: the width choices of every layer: distinct positive integers.

    Raises:
        TrailsError (a ValueError): for ``layers < 1``, an empty ``widths``, a width ≤ 0 or a
        repeated width.
    """

    def __init__(self, layers: int = DEFAULT_LAYERS, widths: Sequence[int] = DEFAULT_WIDTHS):
        widths = tuple(int(width) for width in widths)
        if int(layers) < 1:
            raise TrailsError(f"the search space needs layers >= 1, got {layers}")
        if not widths:
            raise TrailsError("the search space needs at least one width")
        if min(widths) < 1:
            raise TrailsError(f"every width must be >= 1, got {list(widths)}")
        if len(set(widths)) != len(widths):
            raise TrailsError(f"widths must be distinct, got {list(widths)}")
        self.layers = int(layers)
        self.widths = widths
        self._index_of_width = {width: index for index, width in enumerate(widths)}

    @classmethod
    def from_config(cls, config, large: bool = False) -> "SearchSpace":
        """The space of ``[space]`` in ``config``: ``layers`` and ``widths`` (``large_widths`` when
        ``large``, used for criteo-sized data)."""
        key = "large_widths" if large else "widths"
        return cls(config.getint("space", "layers"), config.get_int_list("space", key))

    @property
    def size(self) -> int:
        """Number of archs in the space: ``len(widths) ** layers``."""
        return len(self.widths) ** self.layers

    @property
    def max_width(self) -> int:
        return max(self.widths)

    def __repr__(self) -> str:
        return f"SearchSpace(layers={self.layers}, widths={self.widths})"

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and (self.layers, self.widths) == (other.layers, other.widths)

    def __hash__(self) -> int:
        return hash((self.layers, self.widths))

    # --- validation and text form ---------------------------------------------------------

    def validate(self, arch: Sequence[int]) -> Arch:
        """``arch`` as a tuple of ints; raises TrailsError when it is not in the space."""
        arch = tuple(int(width) for width in arch)
        if len(arch) != self.layers:
            raise TrailsError(
                f"arch {arch} has {len(arch)} layers, the space has {self.layers}",
                hint=f"give {self.layers} widths",
            )
        for width in arch:
            if width not in self._index_of_width:
                raise TrailsError(f"width {width} of arch {arch} is not in the space", hint=self._valid_widths_hint())
        return arch

    def encode(self, arch: Sequence[int]) -> str:
        """``(8, 16, 32, 64)`` → ``"8-16-32-64"``; raises TrailsError for an arch outside the space."""
        return arch_text(self.validate(arch))

    def decode(self, text: str) -> Arch:
        """``"8-16-32-64"`` → ``(8, 16, 32, 64)``.

        Raises:
            TrailsError (a ValueError): when ``text`` is not ``layers`` dash-separated integers from
            ``widths``; the message names the valid widths.
        """
        try:
            arch = parse_arch(text, bounded=False)
        except TrailsError:
            raise TrailsError(
                f"cannot read arch {text!r}: expected {self.layers} widths joined by '-', e.g. "
                f"{self.encode(self.arch_at(0))!r}",
                hint=self._valid_widths_hint(),
            ) from None
        return self.validate(arch)

    def _valid_widths_hint(self) -> str:
        return "valid widths: " + ", ".join(str(width) for width in self.widths)

    # --- numbering ------------------------------------------------------------------------

    def index_of(self, arch: Sequence[int]) -> int:
        """The number of ``arch`` in enumeration order (inverse of :meth:`arch_at`)."""
        index = 0
        for width in self.validate(arch):
            index = index * len(self.widths) + self._index_of_width[width]
        return index

    def arch_at(self, index: int) -> Arch:
        """The arch numbered ``index``, 0 ≤ index < size; raises TrailsError outside that range."""
        index = int(index)
        if not 0 <= index < self.size:
            raise TrailsError(f"arch index {index} is outside 0..{self.size - 1}")
        digits = []
        for _ in range(self.layers):
            index, digit = divmod(index, len(self.widths))
            digits.append(self.widths[digit])
        return tuple(reversed(digits))

    def enumerate(self) -> Iterator[Arch]:
        """Every arch once, in index order (lexicographic over width indices)."""
        return itertools.product(self.widths, repeat=self.layers)

    # --- random moves ---------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random arch."""
        picks = rng.integers(0, len(self.widths), size=self.layers)
        return tuple(self.widths[pick] for pick in picks)

    def mutate(self, arch: Sequence[int], rng: np.random.Generator) -> Arch:
        """``arch`` with exactly one layer (uniformly chosen) set to a different width (uniformly
        chosen among the others). Raises TrailsError when the space has a single width."""
        arch = self.validate(arch)
        if len(self.widths) < 2:
            raise TrailsError("cannot mutate an arch in a space with a single width")
        layer = int(rng.integers(0, self.layers))
        current = self._index_of_width[arch[layer]]
        pick = int(rng.integers(0, len(self.widths) - 1))
        new_index = pick if pick < current else pick + 1
        return arch[:layer] + (self.widths[new_index],) + arch[layer + 1 :]
