"""The refinement job contract (JobSpec, TrainingSettings on the wire), the service's schema held
equal to it, the service refusing settings it cannot honour, and RefinementClient.run — no
database, no service process (the app runs in this process where one is needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from fastapi.testclient import TestClient

import trails.refinement.service.jobs as service_jobs
from trails.errors import TrailsError
from trails.refinement.client import JobOutcome, RefinementClient, ServiceError, ServiceFailed
from trails.refinement.jobs import FINISHED, STATUSES, JobSpec
from trails.refinement.service import JobRequest, ServiceSettings, SettingsRequest, create_app
from trails.refinement.settings import TrainingSettings

SETTINGS = TrainingSettings(batch_size=64, iter_per_epoch=7, learning_rate=0.02, embedding_dim=4,
                            batch_norm=False, eval_batch_size=100, precision="fp32", decision_valid_rows=500)


def _spec(**changes) -> JobSpec:
    fields = dict(dataset="public.frappe", label="label", layout_id=3, database="trails", role="alice",
                  tables={"train": "public.frappe_train", "valid": "public.frappe_valid", "test": "public.frappe_test"},
                  oids={"train": 1, "valid": 2, "test": 3}, split_bounds=None, layout={"fields": []},
                  candidates=("8-8", "16-16"), u=2, eta=3, max_epochs=9, deadline_s=12.5, seed=7,
                  metric="roc_auc", finish=True, settings=SETTINGS,
                  reserves=("gbdt:leaves=15,lr=0.1,min_child=20,ff=1,bf=1,l2=0,cat=10",),
                  starts=({"candidate": "8-8", "weights": "AAEC", "id_map": [[0, 0, 5], [5, 7, 2]], "model_id": 4},))
    fields.update(changes)
    return JobSpec(**fields)


def test_a_job_spec_survives_json_exactly():
    spec = _spec()
    text = json.dumps(spec.to_json())
    assert JobSpec.from_json(text) == spec
    assert JobSpec.from_json(json.loads(text)) == spec
    data = json.loads(text)
    assert data["settings"] == SETTINGS.to_json() and set(data["settings"]) == set(dataclasses.asdict(SETTINGS))
    assert set(data) == JobSpec.field_names()
    minimal = JobSpec(dataset="d", layout_id=1, candidates=("8",), u=1, settings=TrainingSettings())
    assert JobSpec.from_json(minimal.to_json()) == minimal
    assert "reserves" not in minimal.to_json()  # what a service older than reserves accepts
    assert "starts" not in minimal.to_json()  # nor starts, when there are none


def test_a_job_spec_refuses_unknown_missing_and_bad_fields():
    data = _spec().to_json()
    with pytest.raises(TrailsError, match="no field epochs"):
        JobSpec.from_json(dict(data, epochs=3))
    with pytest.raises(TrailsError, match="needs settings"):
        JobSpec.from_json({k: v for k, v in data.items() if k != "settings"})
    with pytest.raises(TrailsError, match="lack embedding_dim"):
        JobSpec.from_json(dict(data, settings={k: v for k, v in data["settings"].items() if k != "embedding_dim"}))
    with pytest.raises(TrailsError, match="embedding_dim is 0, but must be embedding_dim >= 1"):
        JobSpec.from_json(dict(data, settings=dict(data["settings"], embedding_dim=0)))
    with pytest.raises(TrailsError, match="precision is 'fp16'"):
        TrainingSettings.from_json(dict(data["settings"], precision="fp16"))


def test_training_settings_round_trip():
    assert TrainingSettings.from_json(SETTINGS.to_json()) == SETTINGS
    assert set(SETTINGS.to_json()) == {field.name for field in dataclasses.fields(TrainingSettings)}


def test_the_services_schema_is_the_job_spec():
    """The pydantic schema of POST /v1/jobs has exactly JobSpec's fields, and its settings exactly
    TrainingSettings' (all required: the service has no settings of its own)."""
    assert set(JobRequest.model_fields) == JobSpec.field_names()
    assert set(SettingsRequest.model_fields) == {field.name for field in dataclasses.fields(TrainingSettings)}
    assert all(field.is_required() for field in SettingsRequest.model_fields.values())
    assert JobRequest.model_fields["settings"].is_required()
    spec = _spec()
    assert JobRequest.model_validate(spec.to_json()).to_spec() == spec
    assert FINISHED == ("done", "failed", "cancelled") and set(FINISHED) < set(STATUSES)


@pytest.fixture
def app_client():
    with TestClient(create_app(ServiceSettings(), "cpu")) as client:
        yield client


def _body(**setting_changes) -> dict:
    return _spec(database=None, role=None, tables=None, oids=None,
                 settings=dataclasses.replace(SETTINGS, **setting_changes)).to_json()


def test_the_service_refuses_a_job_whose_settings_it_cannot_honour(app_client, monkeypatch):
    monkeypatch.setattr(service_jobs, "cpu_has_native_bf16", lambda: False)
    answer = app_client.post("/v1/jobs", json=_body(precision="bf16"))
    assert answer.status_code == 422
    assert "precision bf16 cannot be honoured" in answer.json()["error"]
    assert "auto or fp32" in answer.json()["hint"]
    out_of_range = app_client.post("/v1/jobs", json=_body(batch_size=0))
    assert out_of_range.status_code == 422
    assert "settings.batch_size: Input should be greater than or equal to 1" in out_of_range.json()["error"]
    malformed = dict(_body(), starts=[{"candidate": "8-8", "weights": "not base64!", "id_map": [], "model_id": 1}])
    refused = app_client.post("/v1/jobs", json=malformed)
    assert refused.status_code == 422 and "a start needs candidate, weights (base64)" in refused.json()["error"]
    assert app_client.get("/v1/jobs").json() == []  # nothing was queued


def test_refusal_of_precisions():
    cpu = torch.device("cpu")
    assert service_jobs.refusal(dataclasses.replace(SETTINGS, precision="fp32"), cpu) is None
    assert service_jobs.refusal(dataclasses.replace(SETTINGS, precision="auto"), cpu) is None


class FakeClient(RefinementClient):
    """A client whose HTTP answers are scripted: ``statuses`` polled in order."""

    def __init__(self, statuses, submit_error=None):
        super().__init__("http://fake")
        self.statuses, self.submit_error, self.sent = list(statuses), submit_error, None

    def submit(self, job) -> str:
        if self.submit_error is not None:
            raise self.submit_error
        self.sent = job.to_json()
        return "job1"

    def status(self, job_id):
        return self.statuses.pop(0)

    def cancel(self, job_id):
        return {}

    def model_state(self, job_id):
        return b"weights"


def test_run_submits_waits_and_fetches_the_weights():
    rung = {"arch": "8-8", "rung": 0, "total_epochs": 2, "valid_score": 0.8}
    result = {"winner": "8-8", "valid_score": 0.81, "settings": SETTINGS.to_json()}
    client = FakeClient([{"status": "running", "rungs": [rung]},
                         {"status": "done", "rungs": [rung, dict(rung, rung=1)], "result": result}])
    events = []
    outcome = client.run(_spec(), sleep=lambda: None, on_rung=lambda r: events.append(("rung", r["rung"])),
                         on_submitted=lambda job_id: events.append(("submitted", job_id)))
    assert events == [("submitted", "job1"), ("rung", 0), ("rung", 1)]
    assert outcome == JobOutcome("job1", "8-8", 0.81, b"weights", outcome.summary)
    assert outcome.summary["job_id"] == "job1" and len(outcome.summary["rungs"]) == 2
    assert client.sent["settings"] == SETTINGS.to_json()


def test_run_raises_service_failed_with_the_jobs_error():
    error = {"message": "layout 9 not found", "hint": "pass the layout_id", "detail": "d", "type": "TrailsError"}
    client = FakeClient([{"status": "failed", "error": error, "message": "x"}])
    with pytest.raises(ServiceFailed) as failed:
        client.run(_spec(), sleep=lambda: None)
    assert failed.value.message == "refinement job job1 failed: layout 9 not found"
    assert (failed.value.hint, failed.value.detail) == ("pass the layout_id", "d")
    cancelled = FakeClient([{"status": "cancelled", "message": "cancelled"}])
    with pytest.raises(ServiceFailed, match="job1 cancelled: cancelled") as caught:
        cancelled.run(_spec(), sleep=lambda: None)
    assert caught.value.hint == "see the refinement service's log"
    refused = FakeClient([], submit_error=ServiceError("refinement service: no (HTTP 422 on POST /v1/jobs)", 422,
                                                       hint="send precision auto or fp32"))
    with pytest.raises(ServiceFailed, match="HTTP 422") as caught:
        refused.run(_spec(), sleep=lambda: None)
    assert caught.value.hint == "send precision auto or fp32"
