"""The live workers: what each serves, on which devices, and when it was last heard from."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.deps import DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse
from cnnlab.store import workers

router = APIRouter(prefix="/workers", tags=["workers"], responses={401: {"model": ErrorResponse}})


class WorkerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="`<host>/<pid>` of the worker's main process")
    queues: list[str] = Field(description="the queues it takes jobs from: `cpu`, `gpu`")
    devices: list[str] = Field(description="its GPUs, by name (empty for a CPU worker)")
    version: str = Field(description="the cnnlab version it runs")
    started_at: datetime
    last_seen: datetime = Field(description="its last heartbeat")


class WorkerList(BaseModel):
    items: list[WorkerRead]
    live_seconds: float = Field(
        description="a worker is listed while its last heartbeat is at most this old"
    )


def _live(session: Session, within_seconds: float) -> list[WorkerRead]:
    return [WorkerRead.model_validate(w) for w in workers.live_workers(session, within_seconds)]


@router.get("", response_model=WorkerList)
async def list_workers(user: UserDep, db: DbDep, settings: SettingsDep) -> WorkerList:
    """The live workers (heartbeat within `live_seconds`), by id. A `device: "cuda"` job is
    refused (422 `no_gpu_worker`) while none of them serves the `gpu` queue."""
    window = settings.worker_live_seconds
    return WorkerList(items=await db.read(_live, window), live_seconds=window)
