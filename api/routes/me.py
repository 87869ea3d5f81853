"""``GET /v1/me``: who the token belongs to, and what counts against their limits."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse
from cnnlab.lifecycle import quota
from cnnlab.store import retention

router = APIRouter(tags=["me"], responses={401: {"model": ErrorResponse}})


class StorageRead(BaseModel):
    used_bytes: int
    checkpoint_bytes: int
    model_bytes: int
    dataset_bytes: int  # uploaded archives and their decoded tensors
    input_bytes: int = 0  # archives of batch predictions that have not ended
    limit_bytes: int | None  # None: no limit (CNNLAB_MAX_STORAGE_BYTES=0)


class ActiveJobsRead(BaseModel):
    count: int
    limit: int


class MeRead(BaseModel):
    name: str
    storage: StorageRead
    active_jobs: ActiveJobsRead


@dataclass(frozen=True)
class _Usage:
    storage: retention.StorageUsage
    active: int


def _usage(session: Session, owner_id: int) -> _Usage:
    return _Usage(retention.storage_used(session, owner_id), quota.active_jobs(session, owner_id))


@router.get("/me", response_model=MeRead)
async def me(db: DbDep, user: UserDep, settings: SettingsDep, limits: ApiSettingsDep) -> MeRead:
    """The caller's name; the bytes they store (their jobs' checkpoints, their model versions,
    their uploaded datasets, the archives of batch predictions not ended yet) against
    `CNNLAB_MAX_STORAGE_BYTES`; their queued and running jobs against `CNNLAB_MAX_ACTIVE_JOBS`."""
    usage = await db.read(_usage, user.id)
    return MeRead(
        name=user.name,
        storage=StorageRead(
            used_bytes=usage.storage.used_bytes,
            checkpoint_bytes=usage.storage.checkpoint_bytes,
            model_bytes=usage.storage.model_bytes,
            dataset_bytes=usage.storage.dataset_bytes,
            input_bytes=usage.storage.input_bytes,
            limit_bytes=settings.max_storage_bytes or None,
        ),
        active_jobs=ActiveJobsRead(count=usage.active, limit=limits.max_active_jobs),
    )
