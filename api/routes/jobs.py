"""Training jobs: submit, list, read, cancel, metrics, checkpoint and learning curves."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api import plots
from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse, JobList, JobRead, JobSubmit, JobUpdate, MetricRow
from api.scoring_plots import mistakes_png
from cnnlab import lifecycle
from cnnlab.lifecycle.views import job_view
from cnnlab.store import jobs
from cnnlab.store.errors import Conflict
from cnnlab.store.job_labels import update_labels
from cnnlab.store.paging import DEFAULT_LIMIT, MAX_LIMIT
from cnnlab.store.tables import CheckpointKind, JobStatus
from worker.queue import enqueue_job

router = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobRead,
    responses={
        413: {"model": ErrorResponse, "description": "body over CNNLAB_MAX_BODY_BYTES"},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse, "description": "too many queued and running jobs"},
    },
)
async def submit_job(
    body: JobSubmit, db: DbDep, user: UserDep, settings: SettingsDep, limits: ApiSettingsDep
) -> JobRead:
    """Submit a train spec (with, if you like, the job's `name`, `tags` and `notes`). It is
    checked against this server's data before it is queued."""
    spec, labels = body.split()
    job = await db.run(
        lifecycle.submit_job,
        user.id,
        spec,
        settings,
        enqueue=enqueue_job,
        max_active=limits.max_active_jobs,
        labels=labels,
    )
    return JobRead.model_validate(job_view(job))


@router.get("", response_model=JobList)
async def list_jobs(
    db: DbDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
    status: JobStatus | None = None,
    search_id: str | None = None,
    kind: Annotated[
        Literal["train", "evaluate", "compare", "batch_predict"],
        Query(description="training jobs unless asked for evaluations and the like"),
    ] = "train",
    tag: Annotated[str | None, Query(description="only jobs with this tag")] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="only jobs whose name contains this")
    ] = None,
) -> JobList:
    """The caller's jobs, newest first."""
    page = await db.read(
        jobs.list_jobs,
        user.id,
        limit=limit,
        cursor=cursor,
        status=status,
        search_id=search_id,
        kind=kind,
        tag=tag,
        name=name,
    )
    return JobList(items=[JobRead.model_validate(job_view(j)) for j in page.items], next=page.next)


@router.get("/{job_id}", response_model=JobRead)
async def get_job(job_id: str, db: DbDep, user: UserDep) -> JobRead:
    return JobRead.model_validate(job_view(await db.read(jobs.get_job, user.id, job_id)))


@router.patch("/{job_id}", response_model=JobRead)
async def update_job(job_id: str, body: JobUpdate, db: DbDep, user: UserDep) -> JobRead:
    """Change the job's `name`, `tags` (the whole list) or `notes`; fields left out stay."""
    fields = body.model_dump(exclude_unset=True)
    return JobRead.model_validate(await db.run(update_labels, user.id, job_id, **fields))


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobRead)
async def cancel_job(job_id: str, db: DbDep, user: UserDep) -> JobRead:
    """A queued job is cancelled at once; a running one stops within an epoch. Cancelling an
    ended job changes nothing."""
    return JobRead.model_validate(job_view(await db.run(lifecycle.cancel_job, user.id, job_id)))


@router.get("/{job_id}/metrics", response_model=list[MetricRow])
async def job_metrics(job_id: str, db: DbDep, user: UserDep) -> list[MetricRow]:
    """One row per finished epoch, in order."""
    return [MetricRow.model_validate(m) for m in await db.read(jobs.job_metrics, user.id, job_id)]


@router.get(
    "/{job_id}/checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "torch.load reads it"},
        409: {"model": ErrorResponse, "description": "no checkpoint yet"},
    },
)
async def download_checkpoint(
    job_id: str, db: DbDep, user: UserDep, kind: CheckpointKind = CheckpointKind.best
) -> Response:
    """The best (by validation accuracy) or the last checkpoint, a file `torch.load` reads."""
    ckpt = await db.read(jobs.get_checkpoint, user.id, job_id, kind)
    return Response(
        content=ckpt.data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{job_id}-{kind}.pt"',
            "X-Checkpoint-Epoch": str(ckpt.epoch),
        },
    )


@router.get(
    "/{job_id}/curves.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def learning_curves(job_id: str, db: DbDep, user: UserDep) -> Response:
    """Train and validation loss, and validation accuracy, per epoch."""
    rows = await db.read(jobs.job_metrics, user.id, job_id)
    png = await run_in_threadpool(plots.curves_png, [MetricRow.model_validate(r) for r in rows])
    return Response(content=png, media_type="image/png")


@router.get(
    "/{job_id}/mistakes.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        409: {"model": ErrorResponse, "description": "no report yet (the job has not succeeded)"},
    },
)
async def job_mistakes(job_id: str, db: DbDep, user: UserDep) -> Response:
    """The best model's most confident wrong validation predictions, with true and predicted
    class names."""
    job = await db.read(jobs.get_job, user.id, job_id)
    validation = (job.result or {}).get("validation")
    if validation is None:
        raise Conflict(
            f"job {job_id!r} has no report yet: it is made when the job succeeds", job_id=job_id
        )
    png = await run_in_threadpool(mistakes_png, validation.get("mistakes", []))
    return Response(content=png, media_type="image/png")
