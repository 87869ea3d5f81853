"""Liveness, readiness and metrics, without authentication.

``/healthz``: the process answers. ``/readyz``: it can do its work, the database and the broker
both answering within :data:`READY_TIMEOUT_S` (checked on each call, in parallel, off the event
loop). ``/metrics``: Prometheus' text format (see :mod:`api.metrics`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.metrics import CONTENT_TYPE, Metrics
from api.schemas import Health, Readiness
from cnnlab import __version__
from cnnlab.settings import EMBEDDED_BROKER, Settings
from cnnlab.store.db import read_scope

router = APIRouter(tags=["health"])

# Seconds each dependency has to answer before it counts as down.
READY_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(version=__version__)


def check_database(url: str) -> None:
    with read_scope(url) as session:
        session.execute(text("SELECT 1"))


def _celery(request: Request, settings: Settings) -> Any:
    """The app's Celery application (made once: building one costs a few milliseconds)."""
    from worker.app import create_celery

    celery = getattr(request.app.state, "celery", None)
    if celery is None:
        celery = request.app.state.celery = create_celery(settings)
    return celery


def check_broker(celery: Any, embedded: bool, timeout: float) -> None:
    """Connect to the broker and ask it for each queue's length (a round trip on Redis, a
    query of the embedded broker's SQLite file)."""
    from worker.app import QUEUES

    options: dict[str, Any] = {"max_retries": 0}
    if not embedded:  # redis-py's socket timeouts (the embedded broker has no sockets)
        options |= {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with celery.connection_for_write(connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = conn.default_channel
        for queue in QUEUES:
            channel._size(queue)


async def _check(fn: Any, *args: Any) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(fn, *args), READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g} s"
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {message}"[:300] if message else type(exc).__name__
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "`checks` names what is down"}},
)
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """200 when the database and the broker both answer; 503 naming the ones that do not."""
    celery = _celery(request, settings)
    embedded = settings.broker_url == EMBEDDED_BROKER
    database, broker = await asyncio.gather(
        _check(check_database, settings.resolved_database_url),
        _check(check_broker, celery, embedded, READY_TIMEOUT_S),
    )
    checks = {"database": database, "broker": broker}
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies by route and status, predictions, jobs by status."""
    registry: Metrics = request.app.state.metrics
    body = await run_in_threadpool(registry.render)
    return Response(body, media_type=CONTENT_TYPE)
