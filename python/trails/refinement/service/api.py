"""The refinement service's HTTP API: :class:`JobRequest` (the schema of ``POST /v1/jobs``) and
:func:`create_app` (the FastAPI app; see :mod:`trails.refinement.service` for the endpoints)."""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import Literal, Optional

import torch
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

import trails
from trails.errors import TrailsError
from trails.refinement.executor import device_description
from trails.refinement.jobs import JobSpec
from trails.refinement.service.jobs import JobManager, UnknownJob
from trails.refinement.service.settings import ServiceSettings
from trails.refinement.settings import PRECISIONS
from trails.refinement.trainer import default_device
from trails.families import parse_candidate
from trails.families.stored_start import StoredStart

__all__ = ["JobRequest", "SettingsRequest", "create_app"]

log = logging.getLogger("trails.refinement.service")


class SettingsRequest(BaseModel):
    """``settings`` of a job: every field of :class:`~trails.refinement.settings.TrainingSettings`,
    each required (the service has no defaults of its own for them)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(ge=1)
    iter_per_epoch: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    embedding_dim: int = Field(ge=1)
    batch_norm: bool
    eval_batch_size: int = Field(ge=1)
    precision: Literal[PRECISIONS]
    decision_valid_rows: int = Field(ge=1)
    rounds_per_unit: int = Field(ge=1)
    max_nodes: Optional[int] = Field(ge=1)
    predict_s: float = Field(ge=0)
    prediction_rows: int = Field(ge=0)
    dropout: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0)
    embedding_l2: float = Field(ge=0)
    keep_best: bool
    train_threads: int = Field(ge=0)
    numeric_bins: int = Field(ge=0)
    numeric_edges: list[tuple[int, int, list[float]]]
    plateau: Optional[int] = Field(ge=0)


class JobRequest(BaseModel):
    """The body of ``POST /v1/jobs``: :class:`~trails.refinement.jobs.JobSpec` as JSON, its fields
    one by one (a test holds them equal). Unknown fields are rejected (a typo is a 422)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, description="dataset name as model_selection takes it")
    database: Optional[str] = Field(None, min_length=1, description="the caller's database (read there)")
    role: Optional[str] = Field(None, min_length=1, description="the calling role: only tables it may "
                                "SELECT are read, and trails.jobs() shows it its own jobs")
    tables: Optional[dict[str, str]] = Field(None, description="split → schema-qualified table, as the "
                                             "caller's session resolved it")
    oids: Optional[dict[str, int]] = Field(None, description="split → that table's OID")
    split_bounds: Optional[dict[str, list[int]]] = Field(None, description="hash-split percent bounds "
                                                         "per split (one table split 70/20/10)")
    label: str = Field("label", min_length=1)
    layout_id: int = Field(ge=1, description="a row of trails.layouts for this dataset and label")
    layout: Optional[dict] = Field(None, description="that row's layout JSON; sent by a caller whose "
                                   "transaction created the row and has not committed it yet")
    candidates: list[str] = Field(min_length=1, max_length=10000)
    u: int = Field(ge=1, description="first-rung epochs U (successive halving's r)")
    eta: int = Field(3, ge=2, description="reduction factor η")
    max_epochs: int = Field(27, ge=1, description="maximum epochs R")
    deadline_s: Optional[float] = Field(None, gt=0, description="seconds from submission")
    seed: int = 0
    metric: Optional[str] = Field(None, description="the metric successive halving decides with "
                                  "(one of the layout's task; its default when absent)")
    settings: SettingsRequest = Field(description="every training setting: the service trains with exactly "
                                      "these or refuses the job")
    finish: bool = Field(False, description="train the winner on until the deadline, its learning "
                         "rate annealed over exactly the epochs that fit (needs deadline_s)")
    reserves: list[str] = Field(default_factory=list, max_length=1000,
                                description="candidates trained from scratch, in this order, when a finished "
                                "winner leaves time")
    starts: list[dict] = Field(default_factory=list, max_length=100,
                               description="candidates that start from stored weights (a warm start): "
                               "{candidate, weights (base64), id_map, model_id}")

    @field_validator("candidates", "reserves")
    @classmethod
    def _candidates_parse(cls, candidates: list[str]) -> list[str]:
        """Each candidate's text as :attr:`Candidate.text` writes it (an MLP arch, or
        ``family:configuration``); a text no family reads is a 422."""
        try:
            return [parse_candidate(text).text for text in candidates]
        except TrailsError as error:
            raise ValueError(error.message) from None

    @field_validator("starts")
    @classmethod
    def _starts_parse(cls, starts: list[dict]) -> list[dict]:
        """Each start as :meth:`StoredStart.from_json` reads it; a malformed one is a 422."""
        for start in starts:
            try:
                StoredStart.from_json(start)
            except TrailsError as error:
                raise ValueError(error.message) from None
            except (KeyError, ValueError, TypeError) as error:
                raise ValueError(f"a start needs candidate, weights (base64), id_map and model_id: {error}") from None
        return starts

    @model_validator(mode="after")
    def _u_within_max_epochs(self) -> "JobRequest":
        if self.u > self.max_epochs:
            raise ValueError(f"u is {self.u}, but must be u <= max_epochs ({self.max_epochs})")
        if (self.tables is None) != (self.oids is None) or (
                self.tables is not None and not set(self.tables) == set(self.oids) == {"train", "valid", "test"}):
            raise ValueError("tables and oids go together, one entry per split (train, valid, test)")
        return self

    def to_spec(self) -> JobSpec:
        """The :class:`JobSpec` this request carries."""
        return JobSpec.from_json(self.model_dump())


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "invalid job: " + "; ".join(parts)


def _token_check(token: str):
    """A dependency refusing (401) a request without ``Authorization: Bearer <token>`` (none
    when ``token`` is empty)."""
    def require_token(request: Request) -> None:
        if not token:
            return
        supplied = request.headers.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
    return require_token


def _answer_errors_as_json(app: FastAPI) -> None:
    """Every error as ``{"error": <message>, ...}``: a bad payload 422, an unknown job 404, a job
    the service cannot honour 422 (with its hint and detail), HTTP errors with their code."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return JSONResponse({"error": _validation_message(error)}, status_code=422)

    @app.exception_handler(UnknownJob)
    async def _unknown(request: Request, error: UnknownJob):
        return JSONResponse({"error": str(error)}, status_code=404)

    @app.exception_handler(TrailsError)
    async def _refused(request: Request, error: TrailsError):
        return JSONResponse({"error": error.message, "hint": error.hint, "detail": error.detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))


def create_app(settings: ServiceSettings | None = None, device=None) -> FastAPI:
    """The FastAPI app; its job worker starts and stops with the app's lifespan. A job whose
    settings cannot be honoured here is a 422 (``{"error", "hint", "detail"}``)."""
    settings = settings or ServiceSettings.from_config()
    settings.validate()
    cpu_only = device is not None and torch.device(device).type == "cpu"
    device = torch.device(device) if device is not None else default_device()
    manager = JobManager(settings, device, cpu_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()
        log.info("refinement service on %s:%d, device %s, torch %s, auth %s", settings.host,
                 settings.port, device_description(device), torch.__version__,
                 "on" if settings.token else "off")
        yield
        manager.stop()

    app = FastAPI(title="trails refinement service", version=trails.__version__, lifespan=lifespan)
    app.state.manager = manager

    require_token = _token_check(settings.token)
    _answer_errors_as_json(app)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "device": device_description(device), "torch": torch.__version__,
                "cuda": device.type == "cuda", "trails": trails.__version__,
                **manager.describe_executor(),
                "jobs": manager.counts(), "cached_splits": len(manager.cache)}

    @app.post("/v1/jobs", status_code=202, dependencies=[Depends(require_token)])
    def submit(request: JobRequest) -> dict:
        job = manager.submit(request.to_spec())
        return {"job_id": job.id, "status": job.status}

    @app.get("/v1/jobs", dependencies=[Depends(require_token)])
    def list_jobs(role: Optional[str] = None) -> list:
        """Every job kept, or only those of ``role`` (what trails.jobs() asks for a non-superuser)."""
        return [job.summary() for job in manager.all() if role is None or job.spec.role == role]

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(require_token)])
    def job_status(job_id: str) -> dict:
        return manager.get(job_id).to_json()

    @app.get("/v1/jobs/{job_id}/model", dependencies=[Depends(require_token)])
    def job_model(job_id: str) -> Response:
        job = manager.get(job_id)
        with job.lock:
            status, model_bytes = job.status, job.model_bytes
        if status != "done" or model_bytes is None:
            raise HTTPException(409, f"job {job_id} is {status}: its model is there once it is done")
        return Response(model_bytes, media_type="application/octet-stream")

    @app.delete("/v1/jobs/{job_id}", dependencies=[Depends(require_token)])
    def cancel(job_id: str) -> dict:
        return manager.cancel(job_id).to_json()

    return app
