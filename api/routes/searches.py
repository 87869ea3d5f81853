"""Searches: a grid of trial jobs, or trials sampled from a space (random, TPE), maybe pruned;
their plan, pause/resume/retry/cancel, a CSV of the trials and a heatmap."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import plots
from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.schemas import (
    ErrorResponse,
    SearchCreate,
    SearchList,
    SearchPlanRead,
    SearchRead,
)
from cnnlab import lifecycle
from cnnlab.datasets.catalog import uploads_in_scope
from cnnlab.lifecycle.datasets import pin_base_dataset
from cnnlab.lifecycle.views import search_view
from cnnlab.search.plan import plan_search
from cnnlab.store import searches
from cnnlab.store.paging import DEFAULT_LIMIT, MAX_LIMIT
from cnnlab.store.tables import Search
from worker.queue import enqueue_job

router = APIRouter(
    prefix="/searches",
    tags=["searches"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)

_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "body over CNNLAB_MAX_BODY_BYTES"},
    422: {"model": ErrorResponse, "description": "names the field: `space.<path>`, `pruner.name`…"},
}


def _read(session: Session, search: Search) -> SearchRead:
    return SearchRead.model_validate(search_view(session, search))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SearchRead,
    responses={
        **_BODY_ERRORS,
        429: {"model": ErrorResponse, "description": "its trials would pass the active job limit"},
    },
)
async def create_search(
    body: SearchCreate, db: DbDep, user: UserDep, settings: SettingsDep, limits: ApiSettingsDep
) -> SearchRead:
    """Start a search: its first trials now (up to `max_concurrent_trials`), the rest as those
    end. Errors name `grid.<path>`, `space.<path>`, `pruner.<field>` or `base.<field>`."""

    def create(session: Session) -> SearchRead:
        search = lifecycle.create_search(
            session,
            user.id,
            body.base.model_dump(mode="json"),
            body,
            settings,
            enqueue=enqueue_job,
            max_active=limits.max_active_jobs,
        )
        return _read(session, search)

    return await db.run(create)


@router.post("/plan", response_model=SearchPlanRead, responses=_BODY_ERRORS)
async def plan(
    body: SearchCreate, db: DbDep, user: UserDep, settings: SettingsDep
) -> SearchPlanRead:
    """What `POST /v1/searches` with this body would run and could cost; creates nothing. The
    estimate uses this server's recent measured speed on the same dataset and device, else a
    stated default (`basis`)."""

    def make(session: Session) -> SearchPlanRead:
        # An uploaded base dataset: pinned to NAME@V, as creating the search would.
        base, uploads = pin_base_dataset(session, user.id, body.base.model_dump(mode="json"))
        with uploads_in_scope(uploads):
            found = plan_search(session, settings, base, body)
        return SearchPlanRead.build(found)

    return await db.read(make)


@router.get("", response_model=SearchList)
async def list_searches(
    db: DbDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
) -> SearchList:
    """The caller's searches, newest first."""

    def page(session: Session) -> SearchList:
        found = searches.list_searches(session, user.id, limit=limit, cursor=cursor)
        return SearchList(items=[_read(session, s) for s in found.items], next=found.next)

    return await db.read(page)


def _get(session: Session, owner_id: int, search_id: str) -> SearchRead:
    return _read(session, searches.get_search(session, owner_id, search_id))


def _cancel(session: Session, owner_id: int, search_id: str) -> SearchRead:
    return _read(session, lifecycle.cancel_search(session, owner_id, search_id))


def _pause(session: Session, owner_id: int, search_id: str) -> SearchRead:
    return _read(session, lifecycle.pause_search(session, owner_id, search_id))


def _resume(session: Session, owner_id: int, search_id: str) -> SearchRead:
    search = lifecycle.resume_search(session, owner_id, search_id, enqueue=enqueue_job)
    return _read(session, search)


def _retry(session: Session, owner_id: int, search_id: str) -> SearchRead:
    search = lifecycle.retry_search(session, owner_id, search_id, enqueue=enqueue_job)
    return _read(session, search)


@router.get("/{search_id}", response_model=SearchRead)
async def get_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    return await db.read(_get, user.id, search_id)


@router.post("/{search_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=SearchRead)
async def cancel_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    """Cancel every trial: queued ones at once, running ones within an epoch."""
    return await db.run(_cancel, user.id, search_id)


@router.post("/{search_id}/pause", status_code=status.HTTP_202_ACCEPTED, response_model=SearchRead)
async def pause_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    """Add no new trial; those already queued or running go on."""
    return await db.run(_pause, user.id, search_id)


@router.post("/{search_id}/resume", status_code=status.HTTP_202_ACCEPTED, response_model=SearchRead)
async def resume_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    """Undo a pause: trials start again as there is room."""
    return await db.run(_resume, user.id, search_id)


@router.post(
    "/{search_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchRead,
    responses={409: {"model": ErrorResponse, "description": "no failed or cancelled trial"}},
)
async def retry_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    """Run again the trials that failed, were cancelled or lost their worker; succeeded and
    pruned ones are kept and the best trial is chosen again."""
    return await db.run(_retry, user.id, search_id)


# The columns of trials.csv around the searched paths' (one column per path).
CSV_HEAD = ("trial", "job_id")
CSV_TAIL = (
    "status",
    "epoch",
    "val_accuracy",
    "val_loss",
    "test_accuracy",
    "seconds",
    "pruned_epoch",
    "error_type",
)


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None, JSON for a list or object (``model.channels``)."""
    if value is None:
        return ""
    if isinstance(value, list | dict | bool):
        return json.dumps(value)
    return value


def trials_csv(search: SearchRead) -> str:
    """One row per trial, in trial order; one column per searched path."""
    paths = search.paths
    for trial in search.trials:
        paths += [p for p in trial.params if p not in paths]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_HEAD, *paths, *CSV_TAIL])
    for t in search.trials:
        row = [t.index, t.job_id, *(t.params.get(p) for p in paths)]
        row += [t.status.value, t.epoch, t.val_accuracy, t.val_loss, t.test_accuracy, t.seconds]
        row += [t.pruned_epoch, t.error_type]
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


@router.get(
    "/{search_id}/trials.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def trials_csv_route(search_id: str, db: DbDep, user: UserDep) -> Response:
    """The trials as CSV for pandas: `trial`, `job_id`, one column per searched path, `status`,
    `epoch` (epochs run), `val_accuracy` (best), `val_loss` (lowest), `test_accuracy`,
    `seconds` (training time), `pruned_epoch`, `error_type`."""
    search = await db.read(_get, user.id, search_id)
    return Response(
        content=trials_csv(search),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="search-{search.id}-trials.csv"'},
    )


@router.get(
    "/{search_id}/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def heatmap(search_id: str, db: DbDep, user: UserDep) -> Response:
    """The search's metric over its first two paths (the best over any further paths)."""
    search = await db.read(_get, user.id, search_id)
    png = await run_in_threadpool(plots.heatmap_png, search)
    return Response(content=png, media_type="image/png")
