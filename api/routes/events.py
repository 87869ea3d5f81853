"""A job's progress as server-sent events: ``GET /v1/jobs/{id}/events``.

One ``status`` event per status change (its data: the job, as ``GET /v1/jobs/{id}`` answers) and
one ``epoch`` event per finished epoch (its data: the epoch's metrics row). The stream ends after
the status event of an ended job.

Each event's id is ``"<epochs sent>-<status sent>"``: the position in the stream, so a client
that reconnects with ``Last-Event-ID`` gets exactly the epochs and the status change it missed.
The database is polled in short sessions; nothing is held open between polls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.deps import Db, DbDep, UserDep
from api.schemas import ErrorResponse, JobRead, MetricRow
from cnnlab.store import jobs as store
from cnnlab.store.errors import NotFound
from cnnlab.store.models import JobStatus

POLL_S = 0.5
# A comment this often keeps proxies from closing an idle stream and finds gone clients.
HEARTBEAT_S = 15.0
# How long a client waits before reconnecting (the ``retry`` field), in milliseconds.
RETRY_MS = 2000

router = APIRouter(
    prefix="/jobs",
    tags=["jobs"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


@dataclass(frozen=True)
class Position:
    """What the client has: epochs 1..``epochs`` and the status event ``status`` (if any)."""

    epochs: int = 0
    status: str | None = None

    @property
    def id(self) -> str:
        return f"{self.epochs}-{self.status or ''}"

    @classmethod
    def parse(cls, last_event_id: str | None) -> Position:
        if not last_event_id:
            return cls()
        epochs, _, status = last_event_id.strip().partition("-")
        if not epochs.isdigit() or status not in (*JobStatus, ""):
            return cls()  # not one of ours: start from the beginning
        return cls(int(epochs), status or None)


@dataclass(frozen=True)
class Snapshot:
    job: dict[str, Any]
    new_epochs: list[dict[str, Any]]


def _snapshot(session: Session, owner_id: int, job_id: str, after_epoch: int) -> Snapshot:
    job = store.get_job(session, owner_id, job_id)
    rows: list[dict[str, Any]] = []
    if job.epoch > after_epoch:
        rows = [
            MetricRow.model_validate(m).model_dump(mode="json")
            for m in store.metrics_after(session, job_id, after_epoch)
        ]
    return Snapshot(JobRead.model_validate(job).model_dump(mode="json"), rows)


def _frame(event: str, data: dict[str, Any], position: Position) -> str:
    return f"id: {position.id}\nevent: {event}\ndata: {json.dumps(data)}\n\n"


def frames(snapshot: Snapshot, position: Position) -> tuple[list[str], Position]:
    """The events that take a client from ``position`` to ``snapshot``, and the new position.

    A status change is sent before the epochs that follow it, except for an ended job, whose
    epochs all come before its final status."""
    out: list[str] = []
    status = snapshot.job["status"]
    ended = JobStatus(status).ended

    def status_event() -> None:
        nonlocal position
        if status != position.status:
            position = Position(position.epochs, status)
            out.append(_frame("status", snapshot.job, position))

    if not ended:
        status_event()
    for row in snapshot.new_epochs:
        if row["epoch"] > position.epochs:
            position = Position(row["epoch"], position.status)
            out.append(_frame("epoch", {**row, "epochs": snapshot.job["spec"]["epochs"]}, position))
    if ended:
        status_event()
    return out, position


async def _stream(
    request: Request, db: Db, owner_id: int, job_id: str, position: Position
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    quiet = 0.0
    while True:
        try:
            snapshot = await db.read(_snapshot, owner_id, job_id, position.epochs)
        except NotFound:
            return  # deleted while watched
        out, position = frames(snapshot, position)
        for frame in out:
            yield frame
        if JobStatus(snapshot.job["status"]).ended:
            return
        quiet = 0.0 if out else quiet + POLL_S
        if quiet >= HEARTBEAT_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`status` and `epoch` events until the job ends",
        }
    },
)
async def job_events(
    job_id: str,
    request: Request,
    db: DbDep,
    user: UserDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: `status` (data: the job) on each status change and `epoch` (data: the
    metrics row and `epochs`, the total) per finished epoch; the stream ends once the job has.
    Reconnect with `Last-Event-ID` to resume after the last event received."""
    await db.read(store.get_job, user.id, job_id)  # 404 now, not inside the stream
    stream = _stream(request, db, user.id, job_id, Position.parse(last_event_id))
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
