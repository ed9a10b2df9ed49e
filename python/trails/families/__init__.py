"""Model families (see :mod:`trails.families.base`): the interface, the candidate, the stored
``hyper`` and the registry of the families this version knows.

Adding a family is adding one module with a class that implements
:class:`~trails.families.base.ModelFamily`, and registering it here; no phase changes.
"""

from trails.families.base import (DEFAULT_FAMILY, FAMILY_SEPARATOR, Candidate, ModelFamily, Trainable,
                                  as_candidate, family_names, get_family, parse_candidate, register_family)
from trails.families.hyper import ModelHyper
from trails.families.gbdt import GBDT, GbdtFamily
from trails.families.mlp import MLP, MlpFamily

register_family(MLP)
register_family(GBDT)

__all__ = ["DEFAULT_FAMILY", "FAMILY_SEPARATOR", "Candidate", "GBDT", "GbdtFamily", "MLP", "MlpFamily", "ModelFamily",
           "ModelHyper", "Trainable", "as_candidate", "family_names", "get_family", "parse_candidate",
           "register_family"]
