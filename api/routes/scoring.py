"""Evaluations, comparisons and batch predictions of registered models: each a job of its own
kind, run on a worker through the one lifecycle (queued, running, succeeded, failed,
cancelled), with ``result`` once it succeeded.

``POST /v1/models/{name}/evaluations|comparisons|batch-predictions`` answer 202 with the new
resource; ``/v1/evaluations/{id}``, ``/v1/comparisons/{id}`` and ``/v1/batch-predictions/{id}``
read it. Another user's resource is 404 exactly like a missing one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import upload_files
from api.deps import AliasQuery, ApiSettingsDep, Db, DbDep, SettingsDep, UserDep, VersionQuery
from api.errors import InvalidRequest, PayloadTooLarge
from api.schemas import ErrorResponse, without_pixels
from api.scoring_plots import mistakes_png, reliability_png
from cnnlab import lifecycle
from cnnlab.datasets.archives import batch_archive
from cnnlab.lifecycle.scoring_specs import version_ref
from cnnlab.settings import Settings
from cnnlab.status import JobStatus
from cnnlab.store import jobs as store
from cnnlab.store import model_versions as registry
from cnnlab.store.batch_rows import iter_rows, row_counts
from cnnlab.store.errors import Conflict
from cnnlab.store.tables import Job
from worker.queue import enqueue_job

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {
        "model": ErrorResponse,
        "description": "an unknown dataset, or one whose classes or images do not fit the "
        "model's signature (`unknown_classes`, `expected`)",
    },
    429: {"model": ErrorResponse, "description": "too many queued and running jobs"},
}
models = APIRouter(prefix="/models", tags=["evaluations"], responses=_ERRORS)
evaluations = APIRouter(prefix="/evaluations", tags=["evaluations"], responses=_ERRORS)
comparisons = APIRouter(prefix="/comparisons", tags=["evaluations"], responses=_ERRORS)
batches = APIRouter(prefix="/batch-predictions", tags=["evaluations"], responses=_ERRORS)

ARCHIVE_TYPES = ("application/zip", "application/x-tar", "application/gzip", "application/x-gzip")
STREAM_CHUNK = 1 << 20
JSON_MAX_BYTES = 64 * 1024


# -- what the routes read and write ----------------------------------------------------------
class EvaluationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, description="the version to score")
    alias: str | None = Field(
        default=None,
        description="or the alias whose version to score (neither: `production`, else the newest)",
    )
    dataset: str = Field(description="a built-in dataset (its test split)", examples=["mnist"])

    def ref(self) -> dict[str, Any]:
        if self.version is not None and self.alias is not None:
            raise InvalidRequest("alias", "give a version or an alias, not both")
        if self.version is None and self.alias is None:
            return {}  # the version `production` points at, else the newest
        return {"version": self.version} if self.version is not None else {"alias": self.alias}


class ComparisonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int | str = Field(description="the champion: a version or an alias", examples=["production"])
    b: int | str = Field(description="the challenger: a version or an alias", examples=[4])
    dataset: str = Field(description="a built-in dataset (its test split)")


class BatchFromDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="a built-in dataset (its test split)")
    top_k: int = Field(default=5, ge=1, le=20)


class ScoringRead(BaseModel):
    """An evaluation, comparison or batch prediction."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: JobStatus
    spec: dict[str, Any] = Field(description="the model, the version(s) it scores, the data")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: dict[str, Any] | None
    cancel_requested: bool
    environment: dict[str, Any] | None = Field(description="the run's receipt")
    result: dict[str, Any] | None = Field(description="once it succeeded")
    progress: dict[str, int] | None = Field(
        default=None,
        description="an evaluation's or comparison's `done` and `total` images scored (a "
        "comparison scores each image twice) while it runs; a batch prediction's `done` and "
        "`skipped` inputs so far",
    )

    @field_validator("spec", mode="before")
    @classmethod
    def _public_spec(cls, value: Any) -> Any:
        # The versions' database ids are internal: the spec shows numbers and labels.
        def strip(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: strip(x) for k, x in v.items() if k != "version_id"}
            return v

        return strip(value)

    @field_validator("result", mode="before")
    @classmethod
    def _no_pixels(cls, value: Any) -> Any:
        return without_pixels(value)


class ScoringList(BaseModel):
    items: list[ScoringRead]
    by_version: dict[str, list[str]] = Field(
        default_factory=dict, description="version number → ids of its evaluations, newest first"
    )


def _read(job: Job, progress: dict[str, int] | None = None) -> ScoringRead:
    out = ScoringRead.model_validate(job)  # an evaluation's or comparison's progress: the job's
    if progress is not None:
        out.progress = progress
    return out


# -- create ------------------------------------------------------------------------------------
@models.post(
    "/{name}/evaluations", status_code=status.HTTP_202_ACCEPTED, response_model=ScoringRead
)
async def create_evaluation(
    name: str, body: EvaluationCreate, db: DbDep, user: UserDep, limits: ApiSettingsDep
) -> ScoringRead:
    """Score a version (or the alias's, default `production`) on a labelled set, on a worker:
    accuracy, per-class precision/recall/F1, confusion with class names, calibration error."""
    job = await db.run(
        lifecycle.submit_evaluation,
        user.id,
        name,
        body.ref(),
        body.dataset,
        enqueue=enqueue_job,
        max_active=limits.max_active_jobs,
    )
    return _read(job)


@models.get("/{name}/evaluations", response_model=ScoringList)
async def list_evaluations(name: str, db: DbDep, user: UserDep) -> ScoringList:
    """The model's evaluations, newest first, and their ids by version: how each version did
    on every set it was tried on."""
    jobs = await db.read(_model_jobs, user.id, name, "evaluate")
    by_version: dict[str, list[str]] = {}
    for job in jobs:
        by_version.setdefault(str(job.spec.get("version")), []).append(job.id)
    return ScoringList(items=[_read(j) for j in jobs], by_version=by_version)


def _model_jobs(session: Session, owner_id: int, name: str, kind: str) -> list[Job]:
    model_id = registry.model_id_of(session, owner_id, name)
    return store.model_jobs(session, owner_id, model_id, kind)


@models.post(
    "/{name}/comparisons", status_code=status.HTTP_202_ACCEPTED, response_model=ScoringRead
)
async def create_comparison(
    name: str, body: ComparisonCreate, db: DbDep, user: UserDep, limits: ApiSettingsDep
) -> ScoringRead:
    """Champion (`a`) against challenger (`b`) on the same images: both metric sets, per-class
    differences, the images where they disagree, McNemar's test and a verdict at α = 0.05."""
    job = await db.run(
        lifecycle.submit_comparison,
        user.id,
        name,
        version_ref(body.a, "a"),
        version_ref(body.b, "b"),
        body.dataset,
        enqueue=enqueue_job,
        max_active=limits.max_active_jobs,
    )
    return _read(job)


@models.get("/{name}/comparisons", response_model=ScoringList)
async def list_comparisons(name: str, db: DbDep, user: UserDep) -> ScoringList:
    jobs = await db.read(_model_jobs, user.id, name, "compare")
    return ScoringList(items=[_read(j) for j in jobs])


@models.post(
    "/{name}/batch-predictions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ScoringRead,
    openapi_extra={
        "requestBody": {
            "content": {
                **{t: {"schema": {"type": "string", "format": "binary"}} for t in ARCHIVE_TYPES},
                "application/json": {"schema": BatchFromDataset.model_json_schema()},
            }
        }
    },
    responses={413: {"model": ErrorResponse, "description": "over CNNLAB_BATCH_MAX_BYTES"}},
)
async def create_batch_prediction(
    name: str,
    request: Request,
    db: DbDep,
    user: UserDep,
    limits: ApiSettingsDep,
    settings: SettingsDep,
    alias: AliasQuery = None,
    version: VersionQuery = None,
    top_k: Annotated[int, Query(ge=1, le=20)] = 5,
) -> ScoringRead:
    """Predict every image of an archive (zip or tar, streamed as the raw body) or of a dataset
    (`{"dataset"}` as JSON), on a worker. Results at `…/results.csv` and `…/results.jsonl`;
    files that are not usable images are listed with why, not fatal."""
    if alias is not None and version is not None:
        raise InvalidRequest("alias", "give an alias or a version, not both")
    ref = {"version": version} if version is not None else {"alias": alias}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()

    async def submit(**source: Any) -> Job:
        return await db.run(
            lifecycle.submit_batch_prediction,
            user.id,
            name,
            ref,
            settings=settings,
            enqueue=enqueue_job,
            max_active=limits.max_active_jobs,
            **source,
        )

    if kind == "application/json":
        raw = b""
        async for chunk in request.stream():  # exempt from the app's body limit: bounded here
            raw += chunk
            if len(raw) > JSON_MAX_BYTES:
                raise _too_large(JSON_MAX_BYTES)
        try:
            body = BatchFromDataset.model_validate_json(raw)
        except ValueError as exc:
            raise InvalidRequest("body", f"expected {{'dataset': NAME}}: {exc}") from None
        job = await submit(dataset=body.dataset, top_k=body.top_k)
    else:
        async with _received_archive(request, settings) as archive:
            job = await submit(archive=archive, top_k=top_k)
    return _read(job, {"done": 0, "skipped": 0})


@asynccontextmanager
async def _received_archive(
    request: Request, settings: Settings
) -> AsyncIterator[tuple[Path, str]]:
    """The body streamed to an upload's temporary file while hashed (bounded: 413 as soon as it
    passes ``batch_max_bytes``), checked to be an archive of at most ``batch_max_files`` files
    within an upload's caps on the whole: the file and its sha256, removed on leaving, whatever
    happens (a client gone mid-body included; a killed API's is swept)."""
    async with upload_files.receiving(settings) as (out, path):
        checksum, size = await upload_files.receive(
            request, out, settings.batch_max_bytes, _too_large
        )
        if size == 0:
            raise InvalidRequest("body", "an archive of images (zip or tar) is expected")
        archive = await run_in_threadpool(
            batch_archive,
            path,
            settings.batch_max_files,
            settings.dataset_max_uncompressed_bytes,
            settings.dataset_max_ratio,
        )
        if not archive.entries:
            raise InvalidRequest("body", "the archive holds no files")
        yield path, checksum


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the archive is over {limit} bytes", limit=limit, limit_name="batch_max_bytes"
    )


# -- read, cancel --------------------------------------------------------------------------------
def _get(kind: str, what: str) -> Any:
    def get(session: Session, owner_id: int, job_id: str) -> Job:
        return store.get_job_of_kind(session, owner_id, job_id, kind, what)

    return get


_get_evaluation = _get("evaluate", "evaluation")
_get_comparison = _get("compare", "comparison")
_get_batch = _get("batch_predict", "batch prediction")


def _cancel(kind: str, what: str) -> Any:
    def cancel(session: Session, owner_id: int, job_id: str) -> Job:
        store.get_job_of_kind(session, owner_id, job_id, kind, what)
        return lifecycle.cancel_job(session, owner_id, job_id)

    return cancel


@evaluations.get("/{evaluation_id}", response_model=ScoringRead)
async def get_evaluation(evaluation_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    return _read(await db.read(_get_evaluation, user.id, evaluation_id))


@evaluations.post(
    "/{evaluation_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=ScoringRead
)
async def cancel_evaluation(evaluation_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    return _read(await db.run(_cancel("evaluate", "evaluation"), user.id, evaluation_id))


def _result_of(job: Job, what: str) -> dict[str, Any]:
    if job.result is None:
        raise Conflict(f"{what} {job.id!r} is {job.status}: it has a result once it succeeded")
    return job.result


@evaluations.get(
    "/{evaluation_id}/reliability.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 409: {"model": ErrorResponse}},
)
async def evaluation_reliability(evaluation_id: str, db: DbDep, user: UserDep) -> Response:
    """Accuracy against confidence, bin by bin, and the expected calibration error."""
    result = _result_of(await db.read(_get_evaluation, user.id, evaluation_id), "evaluation")
    png = await run_in_threadpool(reliability_png, result["reliability"], result["ece"])
    return Response(content=png, media_type="image/png")


@evaluations.get(
    "/{evaluation_id}/mistakes.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 409: {"model": ErrorResponse}},
)
async def evaluation_mistakes(evaluation_id: str, db: DbDep, user: UserDep) -> Response:
    """The most confident wrong predictions, with true and predicted class names."""
    result = _result_of(await db.read(_get_evaluation, user.id, evaluation_id), "evaluation")
    png = await run_in_threadpool(mistakes_png, result.get("mistakes", []))
    return Response(content=png, media_type="image/png")


@comparisons.get("/{comparison_id}", response_model=ScoringRead)
async def get_comparison(comparison_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    return _read(await db.read(_get_comparison, user.id, comparison_id))


@comparisons.post(
    "/{comparison_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=ScoringRead
)
async def cancel_comparison(comparison_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    return _read(await db.run(_cancel("compare", "comparison"), user.id, comparison_id))


def scoring_view(session: Session, owner_id: int, job_id: str, kind: str) -> dict[str, Any]:
    """The evaluation, comparison or batch prediction as its GET answers it (JSON): what its
    events stream sends."""
    if kind == "batch_predict":
        return _batch_with_progress(session, owner_id, job_id).model_dump(mode="json")
    what = "evaluation" if kind == "evaluate" else "comparison"
    return _read(store.get_job_of_kind(session, owner_id, job_id, kind, what)).model_dump(
        mode="json"
    )


def _batch_with_progress(session: Session, owner_id: int, job_id: str) -> ScoringRead:
    job = _get_batch(session, owner_id, job_id)
    done, skipped = row_counts(session, job_id)
    return _read(job, {"done": done, "skipped": skipped})


@batches.get("/{batch_id}", response_model=ScoringRead)
async def get_batch_prediction(batch_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    """Status, progress (inputs done so far) and, once it succeeded, the counts."""
    return await db.read(_batch_with_progress, user.id, batch_id)


@batches.post(
    "/{batch_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=ScoringRead
)
async def cancel_batch_prediction(batch_id: str, db: DbDep, user: UserDep) -> ScoringRead:
    return _read(await db.run(_cancel("batch_predict", "batch prediction"), user.id, batch_id))


def _rows(db: Db, owner_id: int, batch_id: str) -> list[dict[str, Any]]:
    def read(session: Session) -> list[dict[str, Any]]:
        job = _get_batch(session, owner_id, batch_id)
        if job.status is not JobStatus.succeeded:
            raise Conflict(
                f"batch prediction {batch_id!r} is {job.status}: results come once it succeeded"
            )
        return [
            {
                "file": r.file,
                "class": r.class_name,
                "probability": r.probability,
                "top_k": r.top_k,
                "error": r.error,
            }
            for r in iter_rows(session, batch_id)
        ]

    return db.call_read(read)


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "class", "probability", "top_k", "error"])
    for row in rows:
        top = ";".join(f"{c}:{p}" for c, p in row["top_k"] or [])
        writer.writerow(
            [row["file"], row["class"] or "", row["probability"] or "", top, row["error"] or ""]
        )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


@batches.get(
    "/{batch_id}/results.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 409: {"model": ErrorResponse}},
)
async def batch_results_csv(batch_id: str, db: DbDep, user: UserDep) -> StreamingResponse:
    """One line per input: `file, class, probability, top_k` (`class:probability` pairs joined
    by `;`), and `error` for an input that could not be read."""
    rows = await run_in_threadpool(_rows, db, user.id, batch_id)
    return StreamingResponse(_csv(rows), media_type="text/csv")


@batches.get(
    "/{batch_id}/results.jsonl",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}, 409: {"model": ErrorResponse}},
)
async def batch_results_jsonl(batch_id: str, db: DbDep, user: UserDep) -> StreamingResponse:
    """One JSON object per input: `file`, `class`, `probability`, `top_k` (`[class,
    probability]` pairs), `error`."""
    rows = await run_in_threadpool(_rows, db, user.id, batch_id)
    lines = (json.dumps(row) + "\n" for row in rows)
    return StreamingResponse(lines, media_type="application/jsonl")
