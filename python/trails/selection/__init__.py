"""``model_selection`` as a pipeline of phases, one small module each:

* :mod:`~trails.selection.request` — the arguments and their checks (no torch);
* :mod:`~trails.selection.budget` — the clock, the reserve and the deadline (seconds or trials);
* :mod:`~trails.selection.prepare` — the dataset resolved once, the task and label checked;
* :mod:`~trails.selection.measure` — t1, t2 and the per-arch cost model;
* :mod:`~trails.selection.planning` — pure: the plan, the filtering scope, the candidates, the
  revised plan;
* :mod:`~trails.selection.scoring` — filtering (``max_params``, the TFMEM ranking);
* :mod:`~trails.selection.refiners` — where successive halving runs (backend, service, auto);
* :mod:`~trails.selection.outcome` — the test score, the stored run and model, the row;
* :mod:`~trails.selection.report` — every NOTICE;
* :mod:`~trails.selection.call` — the call itself, as the sequence of those phases.

Importing this package imports no torch.
"""

from trails.selection.call import explain, plan_model_selection, run_model_selection, select
from trails.selection.planning import (CHEAPEST_SLACK, FILTERING_ONLY_SHARE, FINISH_SHARE, MIN_FINAL_EPOCHS,
                                       WHOLE_SPACE_MAX_ARCHS, affordable_candidates, epoch_cap)
from trails.selection.request import REFINEMENT_MODES, Hooks, SelectionRequest

__all__ = ["CHEAPEST_SLACK", "FILTERING_ONLY_SHARE", "FINISH_SHARE", "Hooks", "MIN_FINAL_EPOCHS",
           "REFINEMENT_MODES", "SelectionRequest", "WHOLE_SPACE_MAX_ARCHS", "affordable_candidates", "epoch_cap",
           "explain", "plan_model_selection", "run_model_selection", "select"]
