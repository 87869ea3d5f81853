"""Progress as server-sent events: ``GET /v1/jobs/{id}/events``, ``/v1/searches/{id}/events``,
and an evaluation's, comparison's or batch prediction's ``…/{id}/events``.

A job's stream: one ``status`` event per status change (its data: the job, as
``GET /v1/jobs/{id}`` answers) and one ``epoch`` event per finished epoch (its data: the epoch's
metrics row). A search's stream: one ``status`` event per status change (the search, as
``GET /v1/searches/{id}`` answers) and one ``trial`` event each time a trial's status or epoch
(and so its score) changes (the trial, as the search lists it). A stream ends after the status
event of an ended job or search.

Each event's id is the position in the stream (what the client has been sent), so a client that
reconnects with ``Last-Event-ID`` gets exactly what it missed. Both streams share one loop that
polls the database in short sessions (nothing is held open between polls) and sends heartbeats.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.auth import AuthCache, lookup
from api.deps import CurrentUser, Db, DbDep, UserDep
from api.ratelimit import RateLimited, app_limits
from api.routes.scoring import scoring_view
from api.schemas import ErrorResponse, JobRead, MetricRow, SearchRead
from cnnlab.lifecycle.views import job_view, search_view
from cnnlab.status import SearchStatus
from cnnlab.store import jobs, searches
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import JobStatus

POLL_S = 0.5
# A comment this often keeps proxies from closing an idle stream and finds gone clients.
HEARTBEAT_S = 15.0
# How long a client waits before reconnecting (the ``retry`` field), in milliseconds.
RETRY_MS = 2000

router = APIRouter(responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})


# -- the shared machinery ---------------------------------------------------------------------


class _Position(Protocol):
    @property
    def id(self) -> str: ...


P = TypeVar("P", bound=_Position)
# An event to send: its name, its data and the client's position once it has it.
Event = tuple[str, dict[str, Any], P]
# One possible event: given the client's position, the event, or None when the client has it.
Move = Callable[[P], Event[P] | None]
# One poll: the frames that bring the client up to date, its new position, and whether the
# stream is over.
Step = tuple[list[str], P, bool]


def _frame(event: str, data: dict[str, Any], position: _Position) -> str:
    return f"id: {position.id}\nevent: {event}\ndata: {json.dumps(data)}\n\n"


def _sequence(
    position: P, ended: bool, status: Move[P], items: Iterable[Move[P]]
) -> tuple[list[str], P]:
    """The frames of ``status`` and ``items``, each event's id the position after it.

    A status change is sent before the items that follow it, except for an ended job or search,
    whose items all come before its final status."""
    moves = [*items, status] if ended else [status, *items]
    out: list[str] = []
    for move in moves:
        step = move(position)
        if step is not None:
            event, data, position = step
            out.append(_frame(event, data, position))
    return out, position


async def _poll(
    request: Request,
    advance: Callable[[P], Awaitable[Step[P]]],
    position: P,
    authorised: Callable[[], Awaitable[bool]],
) -> AsyncGenerator[str, None]:
    yield f"retry: {RETRY_MS}\n\n"
    quiet = 0.0
    while True:
        if not await authorised():
            return  # the token was revoked or expired: a reconnect gets its 401
        try:
            out, position, ended = await advance(position)
        except NotFound:
            return  # deleted while watched
        for frame in out:
            yield frame
        if ended:
            return
        quiet = 0.0 if out else quiet + POLL_S
        if quiet >= HEARTBEAT_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)


async def _counted(
    frames: AsyncGenerator[str, None], release: Callable[[], None]
) -> AsyncIterator[str]:
    try:
        async for frame in frames:
            yield frame
    finally:
        release()
        await frames.aclose()


@dataclass(frozen=True)
class Stream:
    """What every event route needs: the request, the store, the caller, where to resume."""

    request: Request
    db: Db
    user: CurrentUser
    last_event_id: str | None

    async def token_live(self) -> bool:
        """Whether the stream's token is still good. Asked of the store once per auth-cache
        period, as for requests, so a revoked or expired token's stream ends within it."""
        token = self.request.headers.get("authorization", "").partition(" ")[2].strip()
        cache: AuthCache = self.request.app.state.auth_cache
        if cache.get(token) is not None:
            return True
        user = await self.db.read(lookup, token)
        if user is None:
            return False
        cache.put(token, user)
        return True

    def respond(self, advance: Callable[[P], Awaitable[Step[P]]], position: P) -> StreamingResponse:
        """The stream, counted against the user's open streams (429 when they hold the most
        allowed) until it ends or the client goes."""
        streams = app_limits(self.request.app).streams
        release = streams.acquire(self.user.id)
        if release is None:
            raise RateLimited(
                f"{streams.limit} event streams already open for this user; close one first",
                limit_name="event_streams",
                retry_after=RETRY_MS / 1000,
            )
        body = _counted(_poll(self.request, advance, position, self.token_live), release)
        # A response dropped before its body starts never runs the body's ``finally``.
        weakref.finalize(body, release)
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _stream(
    request: Request,
    db: DbDep,
    user: UserDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Stream:
    return Stream(request, db, user, last_event_id)


StreamDep = Annotated[Stream, Depends(_stream)]


def _route(path: str, tag: str, events: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an event route: ``events`` says what it sends, for the OpenAPI document."""
    return router.get(
        path,
        tags=[tag],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": events}},
    )


# -- a job's events ---------------------------------------------------------------------------


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
    job = jobs.get_job(session, owner_id, job_id)
    rows: list[dict[str, Any]] = []
    if job.epoch > after_epoch:
        rows = [
            MetricRow.model_validate(m).model_dump(mode="json")
            for m in jobs.metrics_after(session, job_id, after_epoch)
        ]
    return Snapshot(JobRead.model_validate(job_view(job)).model_dump(mode="json"), rows)


def frames(snapshot: Snapshot, position: Position) -> tuple[list[str], Position]:
    """The events that take a client from ``position`` to ``snapshot``, and the new position."""
    job = snapshot.job

    def status(p: Position) -> Event[Position] | None:
        if job["status"] == p.status:
            return None
        return "status", job, Position(p.epochs, job["status"])

    def epoch(row: dict[str, Any]) -> Move[Position]:
        def move(p: Position) -> Event[Position] | None:
            if row["epoch"] <= p.epochs:
                return None
            return (
                "epoch",
                {**row, "epochs": job["spec"]["epochs"]},
                Position(row["epoch"], p.status),
            )

        return move

    ended = JobStatus(job["status"]).ended
    return _sequence(position, ended, status, map(epoch, snapshot.new_epochs))


@_route("/jobs/{job_id}/events", "jobs", "`status` and `epoch` events until the job ends")
async def job_events(job_id: str, stream: StreamDep) -> StreamingResponse:
    """Server-sent events: `status` (data: the job) on each status change and `epoch` (data: the
    metrics row and `epochs`, the total) per finished epoch; the stream ends once the job has.
    Reconnect with `Last-Event-ID` to resume after the last event received."""
    db, owner_id = stream.db, stream.user.id
    await db.read(jobs.get_job, owner_id, job_id)  # 404 now, not inside the stream

    async def advance(position: Position) -> Step[Position]:
        snapshot = await db.read(_snapshot, owner_id, job_id, position.epochs)
        out, position = frames(snapshot, position)
        return out, position, JobStatus(snapshot.job["status"]).ended

    return stream.respond(advance, Position.parse(stream.last_event_id))


# -- an evaluation's, comparison's or batch prediction's events -------------------------------


def scoring_frames(resource: dict[str, Any], position: Position) -> tuple[list[str], Position]:
    """``status`` on each status change and ``progress`` (data: the resource's ``progress``)
    when more is done; the position's ``epochs`` counts the images (inputs) done."""

    def status(p: Position) -> Event[Position] | None:
        if resource["status"] == p.status:
            return None
        return "status", resource, Position(p.epochs, resource["status"])

    def progress(p: Position) -> Event[Position] | None:
        now = resource.get("progress") or {}
        if int(now.get("done", 0)) <= p.epochs:
            return None
        return "progress", now, Position(int(now["done"]), p.status)

    ended = JobStatus(resource["status"]).ended
    return _sequence(position, ended, status, [progress])


def _scoring_events(kind: str, job_id: str, stream: Stream) -> StreamingResponse:
    db, owner_id = stream.db, stream.user.id

    async def advance(position: Position) -> Step[Position]:
        resource = await db.read(scoring_view, owner_id, job_id, kind)
        out, position = scoring_frames(resource, position)
        return out, position, JobStatus(resource["status"]).ended

    return stream.respond(advance, Position.parse(stream.last_event_id))


_SCORING_EVENTS = "`status` and `progress` events until it ends"


@_route("/evaluations/{evaluation_id}/events", "evaluations", _SCORING_EVENTS)
async def evaluation_events(evaluation_id: str, stream: StreamDep) -> StreamingResponse:
    """Server-sent events: `status` (data: the evaluation, as its GET answers) on each status
    change and `progress` (`done`, `total` images scored) as it runs; the stream ends once the
    evaluation has. `Last-Event-ID` resumes after the last event received."""
    await stream.db.read(scoring_view, stream.user.id, evaluation_id, "evaluate")  # 404 now
    return _scoring_events("evaluate", evaluation_id, stream)


@_route("/comparisons/{comparison_id}/events", "evaluations", _SCORING_EVENTS)
async def comparison_events(comparison_id: str, stream: StreamDep) -> StreamingResponse:
    """As an evaluation's events; `progress` counts each image twice (once per model)."""
    await stream.db.read(scoring_view, stream.user.id, comparison_id, "compare")
    return _scoring_events("compare", comparison_id, stream)


@_route("/batch-predictions/{batch_id}/events", "evaluations", _SCORING_EVENTS)
async def batch_prediction_events(batch_id: str, stream: StreamDep) -> StreamingResponse:
    """As an evaluation's events; `progress` is `done` and `skipped` inputs."""
    await stream.db.read(scoring_view, stream.user.id, batch_id, "batch_predict")
    return _scoring_events("batch_predict", batch_id, stream)


# -- a search's events ------------------------------------------------------------------------

# A status in an event id: its first letter (unique among JobStatus, and among SearchStatus; a
# test checks).
_CODE = {str(s): str(s)[0] for s in JobStatus}
_STATUS = {code: status for status, code in _CODE.items()}
_SEARCH_CODE = {str(s): str(s)[0] for s in SearchStatus}
_SEARCH_STATUS = {code: status for status, code in _SEARCH_CODE.items()}
_TRIAL_ID = re.compile(r"(\d+)([a-z])")

TrialState = tuple[int, str]  # a trial's epoch and status: a new event when either changes


@dataclass(frozen=True)
class SearchPosition:
    """What the client has: the status event ``status`` (if any) and, per trial in grid order,
    the epoch and status of the last event sent about it (None: none sent yet)."""

    status: str | None = None
    trials: tuple[TrialState | None, ...] = ()

    @property
    def id(self) -> str:
        """``<status>:<trial>.<trial>…``, a status as its letter and a trial as ``<epoch><status>``
        or ``-``: ``r:2r.1s.-`` is running; trial 0 at epoch 2 running, 1 succeeded, 2 unsent."""
        trials = ".".join("-" if t is None else f"{t[0]}{_CODE[t[1]]}" for t in self.trials)
        return f"{_SEARCH_CODE[self.status] if self.status else ''}:{trials}"

    @classmethod
    def parse(cls, last_event_id: str | None) -> SearchPosition:
        try:
            code, _, rest = (last_event_id or "").strip().partition(":")
            status = _SEARCH_STATUS[code] if code else None
            trials = tuple(_trial_state(part) for part in rest.split(".")) if rest else ()
        except (KeyError, ValueError):
            return cls()  # not one of ours: start from the beginning
        return cls(status, trials)

    def trial(self, index: int) -> TrialState | None:
        return self.trials[index] if index < len(self.trials) else None

    def with_trial(self, index: int, state: TrialState) -> SearchPosition:
        trials = list(self.trials) + [None] * (index + 1 - len(self.trials))
        trials[index] = state
        return SearchPosition(self.status, tuple(trials))


def _trial_state(part: str) -> TrialState | None:
    if part == "-":
        return None
    match = _TRIAL_ID.fullmatch(part)
    if match is None:
        raise ValueError(part)
    return int(match[1]), _STATUS[match[2]]


@dataclass(frozen=True)
class SearchSnapshot:
    search: dict[str, Any]  # as GET /v1/searches/{id} answers
    states: tuple[TrialState, ...]  # per trial, in the order of search["trials"]


def _search_snapshot(session: Session, owner_id: int, search_id: str) -> SearchSnapshot:
    search = searches.get_search(session, owner_id, search_id)
    read = SearchRead.model_validate(search_view(session, search)).model_dump(mode="json")
    states = tuple((t["epoch"], t["status"]) for t in read["trials"])
    return SearchSnapshot(read, states)


def search_frames(
    snapshot: SearchSnapshot, position: SearchPosition
) -> tuple[list[str], SearchPosition]:
    """The events that take a client from ``position`` to ``snapshot``, and the new position."""
    search = snapshot.search

    def status(p: SearchPosition) -> Event[SearchPosition] | None:
        if search["status"] == p.status:
            return None
        return "status", search, SearchPosition(search["status"], p.trials)

    def trial(index: int, state: TrialState) -> Move[SearchPosition]:
        def move(p: SearchPosition) -> Event[SearchPosition] | None:
            if p.trial(index) == state:
                return None
            return "trial", search["trials"][index], p.with_trial(index, state)

        return move

    moves = [trial(i, state) for i, state in enumerate(snapshot.states)]
    return _sequence(position, SearchStatus(search["status"]).ended, status, moves)


@_route("/searches/{search_id}/events", "searches", "`status` and `trial` events until it ends")
async def search_events(search_id: str, stream: StreamDep) -> StreamingResponse:
    """Server-sent events: `status` (data: the search) on each status change and `trial` (data:
    the trial as the search lists it) whenever a trial's status or epoch changes; the stream ends
    once the search has. Reconnect with `Last-Event-ID` to resume after the last event received."""
    db, owner_id = stream.db, stream.user.id
    await db.read(searches.get_search, owner_id, search_id)  # 404 now, not inside the stream

    async def advance(position: SearchPosition) -> Step[SearchPosition]:
        snapshot = await db.read(_search_snapshot, owner_id, search_id)
        out, position = search_frames(snapshot, position)
        return out, position, SearchStatus(snapshot.search["status"]).ended

    return stream.respond(advance, SearchPosition.parse(stream.last_event_id))
