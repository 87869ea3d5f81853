"""Grid searches: one trial job per grid point; the best trial by validation metric."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import plots
from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse, SearchCreate, SearchList, SearchRead
from cnnlab.store import searches as service
from cnnlab.store.models import Search
from cnnlab.store.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(
    prefix="/searches",
    tags=["searches"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


def _read(session: Session, search: Search) -> SearchRead:
    trials, scores = service.trials_with_scores(session, search)
    return SearchRead.build(search, trials, scores)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SearchRead,
    responses={
        413: {"model": ErrorResponse, "description": "body over CNNLAB_MAX_BODY_BYTES"},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse, "description": "its trials would pass the active job limit"},
    },
)
async def create_search(
    body: SearchCreate, db: DbDep, user: UserDep, settings: SettingsDep, limits: ApiSettingsDep
) -> SearchRead:
    """Start one trial job per grid point. Errors name `grid.<path>` or `base.<field>`."""

    def create(session: Session) -> SearchRead:
        search = service.create_search(
            session,
            user.id,
            body.base.model_dump(mode="json"),
            body.grid,
            settings,
            metric=body.metric,
            mode=body.mode,
            max_active=limits.max_active_jobs,
        )
        return _read(session, search)

    return await db.run(create)


@router.get("", response_model=SearchList)
async def list_searches(
    db: DbDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
) -> SearchList:
    """The caller's searches, newest first."""

    def page(session: Session) -> SearchList:
        found = service.list_searches(session, user.id, limit=limit, cursor=cursor)
        return SearchList(items=[_read(session, s) for s in found.items], next=found.next)

    return await db.read(page)


def _get(session: Session, owner_id: int, search_id: str) -> SearchRead:
    return _read(session, service.get_search(session, owner_id, search_id))


def _cancel(session: Session, owner_id: int, search_id: str) -> SearchRead:
    return _read(session, service.cancel_search(session, owner_id, search_id))


@router.get("/{search_id}", response_model=SearchRead)
async def get_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    return await db.read(_get, user.id, search_id)


@router.post("/{search_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=SearchRead)
async def cancel_search(search_id: str, db: DbDep, user: UserDep) -> SearchRead:
    """Cancel every trial: queued ones at once, running ones within an epoch."""
    return await db.run(_cancel, user.id, search_id)


@router.get(
    "/{search_id}/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def heatmap(search_id: str, db: DbDep, user: UserDep) -> Response:
    """Validation accuracy over the grid's first two axes (the best over any further axes)."""
    search = await db.read(_get, user.id, search_id)
    png = await run_in_threadpool(plots.heatmap_png, search)
    return Response(content=png, media_type="image/png")
