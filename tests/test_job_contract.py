"""The job contract end to end: a refinement service whose own configuration differs from the
caller's trains with the caller's settings (they travel in the job), so the model the backend
stores is the one the service trained, under the hyper-parameters it records."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import conftest
from trails.families import parse_candidate
from trails.families.mlp_config import arch_and_recipe

# the caller's (the test cluster's config.ini) are the repository's: embedding_dim 10,
# batch_norm on, decision_valid_rows 50,000; the service's own configuration says otherwise
SERVICE_OVERRIDES = {"refinement": {"embedding_dim": 6, "batch_norm": "false", "decision_valid_rows": 1000,
                                    "iter_per_epoch": 7}}


@pytest.fixture
def odd_service(pg_dsn, tmp_path):
    """The service on the tests' port, configured unlike the caller."""
    config = conftest.write_config(tmp_path / "service.ini", dict(SERVICE_OVERRIDES, service={
        "port": conftest.SERVICE_PORT, "url": ""}))
    with conftest.refinement_service_process(pg_dsn, config) as url:
        yield url


def test_service_trains_with_the_callers_settings(sql, odd_service):
    run_id, model_id = sql("SELECT run_id, model_id FROM model_selection('frappe', 40, refinement => 'service', families => 'mlp')")[0]
    hyper, summary, valid_score, refinement = sql(
        "SELECT m.hyper, r.phases->'refinement', r.valid_score, r.refinement FROM trails.models m"
        " JOIN trails.runs r USING (run_id) WHERE m.model_id = %s", model_id)[0]
    assert refinement == "service"
    settings = summary["settings"]
    # what the service trained with is what the caller asked for, not the service's own config
    assert (settings["embedding_dim"], settings["batch_norm"], settings["decision_valid_rows"],
            settings["iter_per_epoch"]) == (10, True, 50_000, 200)
    arch = sql("SELECT arch FROM trails.models WHERE model_id = %s", model_id)[0][0]
    width = arch_and_recipe(parse_candidate(arch).config)[1].embedding_dim or 10  # a recipe may widen it
    assert (hyper["embedding_dim"], hyper["batch_norm"], hyper["family"]) == (width, True, "mlp")
    assert summary["embedding_dim"] == width
    # the stored model predicts what the service's model scored: the valid AUC the service
    # measured on the whole valid split is the stored model's, recomputed here from predict
    scores = sql("SELECT t.label, trails.predict(%s, t) FROM frappe_valid t", model_id)
    labels, predicted = np.array([s[0] for s in scores]), np.array([s[1] for s in scores])
    if summary["valid_rows"] == len(labels):  # the deadline left time for the whole split
        assert roc_auc_score(labels, predicted) == pytest.approx(valid_score, abs=1e-6)
    else:  # scored on the decision sample only: the figures still agree closely
        assert roc_auc_score(labels, predicted) == pytest.approx(valid_score, abs=0.02)
