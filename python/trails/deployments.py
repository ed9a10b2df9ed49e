"""Deployments: which stored model of a dataset is *the* one in use (``trails.deployments``).

A deployment is one row, appended, never changed: the dataset, the model, how it was chosen
(``strategy``), its scores, the model it replaced, who and when. The dataset's deployed model
is its newest row's. ``trails.deploy`` appends a row in one statement under a per-dataset
advisory lock, so concurrent deploys of a dataset are serialised and a reader sees a
deployment whole or not at all; a failed or cancelled call appends nothing.

Strategies (``trails.deploy(dataset, model_id => NULL, strategy => ...)``):

* ``model`` — the model named by ``model_id`` (the strategy of any call that names one);
* ``best_score`` — the dataset's model with the best test score by its metric (higher for
  roc_auc, accuracy, r2...; lower for log_loss, rmse, mae); ties → the newest;
* ``most_recent`` — the dataset's newest model;
* ``rollback`` — the model the current deployment replaced (a second rollback returns to the
  model the first one replaced);
* ``if_better``, ``always`` — written by ``model_selection(..., deploy => ...)``
  (:mod:`trails.selection.deployment`).

Before a row is written the model must be one of the dataset's, the caller must be allowed to
SELECT from the dataset's tables, and the model must read the table as it is now (every
column of its layout, of a type it can read) and load (:mod:`trails.serving`).
"""

from __future__ import annotations

from trails.data.dataset import resolve_dataset
from trails.data.layout import table_columns
from trails.data.session import Session
from trails.errors import MODEL_NOT_VISIBLE, TrailsError, sql_text
from trails.task import higher_is_better

STRATEGIES = ("model", "best_score", "most_recent", "rollback")
SELECTION_STRATEGIES = ("if_better", "always")  # model_selection's deploy argument (trails.selection.deployment)
COLUMNS = ("deployment_id", "dataset", "model_id", "strategy", "metric", "valid_score", "test_score",
           "previous_model_id", "deployed_by", "deployed_at")


def current(session: Session, dataset: str) -> dict | None:
    """The dataset's newest deployment row, or None."""
    rows = session.query(f"SELECT {', '.join(COLUMNS)} FROM trails.deployments WHERE dataset = $1"
                         " ORDER BY deployment_id DESC LIMIT 1", [dataset], ["text"])
    return rows[0] if rows else None


def _model_row(session: Session, model_id: int) -> dict:
    rows = session.query("SELECT model_id, dataset, metric, valid_score, test_score FROM trails.models"
                         " WHERE model_id = $1", [model_id], ["bigint"])
    if not rows:
        raise TrailsError(f"model {model_id} not found", detail=MODEL_NOT_VISIBLE,
                          hint="SELECT model_id, dataset FROM trails.models")
    return rows[0]


def _chosen(session: Session, dataset: str, strategy: str, model_id, deployed: dict | None) -> int:
    """The model ``strategy`` picks for ``dataset`` (``model_id`` for ``model``)."""
    if strategy == "model":
        return model_id
    if strategy == "rollback":
        if deployed is None or deployed["previous_model_id"] is None:
            raise TrailsError(f"dataset {dataset} has no earlier deployment to roll back to",
                              detail="deployed now: " + ("nothing" if deployed is None else f"model {deployed['model_id']}"),
                              hint=f"SELECT * FROM trails.deployments WHERE dataset = {sql_text(dataset)}")
        return deployed["previous_model_id"]
    rows = session.query("SELECT model_id, metric, test_score FROM trails.models WHERE dataset = $1"
                         " ORDER BY model_id DESC", [dataset], ["text"])
    if not rows:
        raise TrailsError(f"dataset {dataset} has no stored model",
                          hint=f"run SELECT * FROM model_selection({sql_text(dataset)}, 60) first")
    if strategy == "most_recent":
        return rows[0]["model_id"]
    scored = [row for row in rows if row["test_score"] is not None]
    if not scored:
        raise TrailsError(f"no model of dataset {dataset} has a test score", hint="deploy one by its model_id")

    def goodness(row):
        return row["test_score"] if higher_is_better(row["metric"]) else -row["test_score"]

    return max(scored, key=lambda row: (goodness(row), row["model_id"]))["model_id"]


def check_servable(session: Session, dataset: str, model_id: int) -> None:
    """Raise TrailsError unless the caller may read ``dataset``'s tables and the model reads
    its test table as it is now and loads."""
    from trails.predict import check_table_fields
    from trails.serving.scorer import scorer_for

    tables = resolve_dataset(session, dataset).tables
    denied = [table for table in dict.fromkeys(tables.values()) if not session.query(
        "SELECT has_table_privilege($1, 'SELECT') AS ok", [table], ["text"])[0]["ok"]]
    if denied:
        raise TrailsError(f"permission denied: this role may not read {', '.join(denied)}",
                          hint="a role deploys only models of tables it may read")
    table = tables["test"]
    check_table_fields(scorer_for(session, model_id), table, table_columns(session, table))


def deploy(session: Session, dataset, model_id=None, strategy=None) -> dict:
    """Append the deployment of ``dataset`` that ``model_id`` or ``strategy`` says (see the
    module docstring); returns its row.

    Raises:
        TrailsError: for a NULL or unknown dataset, an unknown strategy, a model of another
            dataset, nothing to roll back to, a table the caller may not read, or a model that
            cannot read the table as it is now (its HINT names the columns).
    """
    if not isinstance(dataset, str) or not dataset.strip():
        raise TrailsError("dataset must be a non-empty name", hint="e.g. trails.deploy('frappe', 12)")
    strategy = strategy or ("model" if model_id is not None else "best_score")
    if strategy not in STRATEGIES:
        raise TrailsError(f"unknown strategy {sql_text(strategy)}", hint="one of: " + ", ".join(STRATEGIES))
    if (strategy == "model") != (model_id is not None):
        raise TrailsError(f"strategy {sql_text(strategy)} " + ("names no model_id" if model_id is None
                                                                 else "chooses the model itself: model_id must be NULL"),
                          hint="trails.deploy('frappe', 12), or trails.deploy('frappe', strategy => 'best_score')")
    lock(session, dataset)
    deployed = current(session, dataset)
    chosen = _model_row(session, _chosen(session, dataset, strategy, model_id, deployed))
    if chosen["dataset"] != dataset:
        raise TrailsError(f"model {chosen['model_id']} is a model of {chosen['dataset']}, not of {dataset}",
                          hint=f"SELECT model_id FROM trails.models WHERE dataset = {sql_text(dataset)}")
    check_servable(session, dataset, chosen["model_id"])
    return append(session, dataset, chosen["model_id"], strategy, deployed)


def lock(session: Session, dataset: str) -> None:
    """Serialise deployments of ``dataset`` until the transaction ends."""
    session.query("SELECT pg_advisory_xact_lock(hashtext('trails.deployments'), hashtext($1))", [dataset], ["text"])


def append(session: Session, dataset: str, model_id: int, strategy: str, deployed: dict | None) -> dict:
    """Write the deployment of ``model_id`` (with its scores as stored) after ``deployed`` (the
    current one, or None); returns the new row. The caller holds :func:`lock`."""
    chosen = _model_row(session, model_id)
    return session.query(
        "INSERT INTO trails.deployments (dataset, model_id, strategy, metric, valid_score, test_score,"
        f" previous_model_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {', '.join(COLUMNS)}",
        [dataset, model_id, strategy, chosen["metric"], chosen["valid_score"], chosen["test_score"],
         None if deployed is None else deployed["model_id"]],
        ["text", "bigint", "text", "text", "float8", "float8", "bigint"])[0]
