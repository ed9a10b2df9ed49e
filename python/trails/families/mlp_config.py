"""The MLP family's configuration: an arch, and the recipe it trains with.

A configuration is the arch tuple (``(64, 128, 64)``, text ``"64-128-64"``) when it trains with
the run's own recipe — every MLP candidate and stored model before recipes existed — or an
:class:`MlpConfig` of an arch and a :class:`~trails.refinement.recipe.Recipe`, text
``"64-128-64/drop=0.3,wd=0.1,eml2=0.001"``. :func:`mlp_config` builds whichever fits, so that
an arch with the default recipe is always the same candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trails.families.base import DEFAULT_FAMILY
from trails.refinement.recipe import Recipe
from trails.space import arch_text, parse_arch

RECIPE_SEPARATOR = "/"
"""Between the arch and the recipe in a configuration's text."""


@dataclass(frozen=True)
class MlpConfig:
    """An arch that trains with ``recipe`` (not the default one: see :func:`mlp_config`)."""

    arch: tuple[int, ...]
    recipe: Recipe


def mlp_config(arch: Sequence[int], recipe: Recipe | None = None):
    """The configuration of ``arch`` with ``recipe``: the arch tuple for the default recipe (or
    None), else an :class:`MlpConfig`."""
    arch = tuple(int(width) for width in arch)
    return arch if recipe is None or recipe.is_default else MlpConfig(arch, recipe)


def arch_and_recipe(config) -> tuple[tuple[int, ...], Recipe]:
    """(arch, recipe) of a configuration (the default :class:`Recipe` for an arch tuple)."""
    if isinstance(config, MlpConfig):
        return config.arch, config.recipe
    return tuple(int(width) for width in config), Recipe()


def config_text(config) -> str:
    """``"64-128-64"``, or ``"64-128-64/drop=0.3,..."`` with a recipe."""
    arch, recipe = arch_and_recipe(config)
    return arch_text(arch) + (RECIPE_SEPARATOR + recipe.text if not recipe.is_default else "")


def parse_config(text: str):
    """The configuration ``text`` names (inverse of :func:`config_text`).

    Raises:
        TrailsError: for an arch or a recipe that cannot be read.
    """
    arch, _, recipe = str(text).partition(RECIPE_SEPARATOR)
    return mlp_config(parse_arch(arch), Recipe.parse(recipe) if recipe.strip() else None)


def trained_settings(candidate, settings):
    """The settings ``candidate`` (a :class:`~trails.families.base.Candidate`) trains with: the
    run's ``settings`` with an MLP candidate's recipe applied (its batch size, rate, iterations
    per epoch, embedding width, ...); the run's for another family."""
    if candidate.family != DEFAULT_FAMILY:
        return settings
    return arch_and_recipe(candidate.config)[1].apply(settings)
