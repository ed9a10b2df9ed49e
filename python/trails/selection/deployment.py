"""``model_selection``'s last phase: whether the new model becomes the dataset's deployed one.

``deploy => 'if_better'`` (the default) deploys it when no model of the dataset is deployed, or
when it beats the deployed model **on the same current test rows**: the deployed model is
scored here, through :mod:`trails.serving`, on the test split as it is now (read with its own
layout when that differs from the run's), with the run's metric, and the new model's test
score was measured on those rows. A tie keeps the deployed model. A deployed model that can no
longer be compared — it no longer reads the table, or is of another task or label — is
replaced, and the NOTICE says why. ``'always'`` deploys whatever the deployed model scores;
``'never'`` only stores the model.

It runs after the run and the model are stored, in the same transaction: a call that fails or
is cancelled changes no deployment (:mod:`trails.deployments` holds the lock and the rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from trails import deployments
from trails.data.layout import table_columns
from trails.data.session import Session
from trails.errors import TrailsError
from trails.refinement.data import load_split
from trails.selection.prepare import Problem
from trails.task import higher_is_better


@dataclass(frozen=True)
class Decision:
    """What the phase did: ``deployed`` (whether the new model is now the deployed one), the
    model it was compared with and that model's score on the current test rows (None when
    none was deployed or it could not be scored), and why, in words."""

    deployed: bool
    previous_model_id: int | None
    previous_score: float | None
    reason: str


def deployed_score(session: Session, problem: Problem, model_id: int, test_data) -> float:
    """The score of deployed model ``model_id`` on the current test rows with the run's metric
    (``test_data``: the run's test split, reused when the model has the run's layout).

    Raises:
        TrailsError: when it cannot be compared: another label or task, or a table it no
            longer reads.
    """
    from trails.predict import check_table_fields
    from trails.serving.scorer import scorer_for

    scorer = scorer_for(session, model_id)
    layout, task = scorer.stored.layout, scorer.task
    if layout.label != problem.layout.label or task.kind != problem.task.kind:
        raise TrailsError(f"it predicts {layout.label} as a {task.kind} task, this run {problem.layout.label} "
                          f"as a {problem.task.kind} task")
    if layout.layout_id != problem.layout.layout_id:
        table = problem.context.dataset.table("test")
        check_table_fields(scorer, table, table_columns(session, table))
        test_data = load_split(session, problem.context.dataset, layout, "test", ordered=False)
    outputs = scorer.outputs(test_data.ids.cpu().numpy(), test_data.values.cpu().numpy())
    return task.with_metric(problem.task.metric).score(test_data.labels.cpu().numpy(), outputs)


def decide(session: Session, choice: str, problem: Problem, dataset: str, model_id: int, test_score: float,
           test_data) -> Decision:
    """Deploy the new model ``model_id`` (test score ``test_score`` on ``test_data``) as
    ``choice`` (``if_better``, ``always``, ``never``) says; see the module docstring."""
    if choice == "never":
        return Decision(False, None, None, "deploy => 'never'")
    deployments.lock(session, dataset)
    current = deployments.current(session, dataset)
    if current is None:
        deployments.append(session, dataset, model_id, choice, None)
        return Decision(True, None, None, f"no model of {dataset} was deployed")
    previous = current["model_id"]
    if choice == "always":
        deployments.append(session, dataset, model_id, choice, current)
        return Decision(True, previous, None, "deploy => 'always'")
    metric = problem.task.metric
    try:
        score = deployed_score(session, problem, previous, test_data)
    except TrailsError as error:
        deployments.append(session, dataset, model_id, choice, current)
        return Decision(True, previous, None, f"the deployed model {previous} cannot be compared: {error.message}")
    better = test_score > score if higher_is_better(metric) else test_score < score
    if better:
        deployments.append(session, dataset, model_id, choice, current)
    verdict = "beats" if better else "does not beat"
    return Decision(better, previous, score, f"test {metric} {test_score:.4f} {verdict} the deployed model {previous}'s "
                                             f"{score:.4f} on the same {len(test_data.labels)} test rows")
