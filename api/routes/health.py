"""Liveness, readiness and metrics, without authentication.

``/healthz``: the process answers. ``/readyz``: it can do its work, the database and the broker
both answering within :data:`READY_TIMEOUT_S` (checked in parallel, off the event loop). It says
which is down (``unavailable``, or ``timeout``) and nothing of why: driver messages name hosts
and users, and the endpoint has no authentication; the reason goes to the log. ``/metrics``:
Prometheus' text format (see :mod:`api.metrics`).

Both answer from a per-process cache for ``ops_cache_seconds`` (one computation at a time; the
requests that arrive meanwhile wait for it), so a flood of probes or scrapes costs the database
one check a second, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

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
from worker.app import QUEUES, create_celery

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

# Seconds each dependency has to answer before it counts as down.
READY_TIMEOUT_S = 2.0

T = TypeVar("T")


class Reused(Generic[T]):
    """A value computed at most once every ``seconds`` (one computation at a time)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.computed = 0
        self._value: T | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._at < self.seconds

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    self._value = await compute()
                    self._at = time.monotonic()
                    self.computed += 1
        assert self._value is not None
        return self._value


def reused(request: Request, name: str) -> Reused[Any]:
    """The app's cache of one operational answer."""
    caches: dict[str, Reused[Any]] | None = getattr(request.app.state, "ops_cache", None)
    if caches is None:
        caches = request.app.state.ops_cache = {}
    if name not in caches:
        caches[name] = Reused(request.app.state.api_settings.ops_cache_seconds)
    return caches[name]


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(version=__version__)


def check_database(url: str) -> None:
    with read_scope(url) as session:
        session.execute(text("SELECT 1"))


def _celery(request: Request, settings: Settings) -> Any:
    """The app's Celery application (made once: building one costs a few milliseconds)."""
    celery = getattr(request.app.state, "celery", None)
    if celery is None:
        celery = request.app.state.celery = create_celery(settings)
    return celery


def check_broker(celery: Any, embedded: bool, timeout: float) -> None:
    """Connect to the broker and ask it for each queue's length (a round trip on Redis, a
    query of the embedded broker's SQLite file)."""
    options: dict[str, Any] = {"max_retries": 0}
    if not embedded:  # redis-py's socket timeouts (the embedded broker has no sockets)
        options |= {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with celery.connection_for_write(connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = conn.default_channel
        for queue in QUEUES:
            channel._size(queue)


async def _check(name: str, fn: Any, *args: Any) -> str:
    """``ok``, ``timeout`` or ``unavailable``; why, only in the log."""
    try:
        await asyncio.wait_for(run_in_threadpool(fn, *args), READY_TIMEOUT_S)
    except TimeoutError:
        logger.warning("readiness: the %s gave no answer within %g s", name, READY_TIMEOUT_S)
        return "timeout"
    except Exception as exc:
        logger.warning("readiness: the %s is unavailable: %s: %s", name, type(exc).__name__, exc)
        return "unavailable"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "`checks` names what is down"}},
)
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """200 when the database and the broker both answer; 503 naming the ones that do not
    (`unavailable` or `timeout`; the reason is in the server's log)."""

    async def check() -> dict[str, str]:
        celery = _celery(request, settings)
        embedded = settings.broker_url == EMBEDDED_BROKER
        database, broker = await asyncio.gather(
            _check("database", check_database, settings.resolved_database_url),
            _check("broker", check_broker, celery, embedded, READY_TIMEOUT_S),
        )
        return {"database": database, "broker": broker}

    checks = await reused(request, "readyz").get(check)
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

    async def render() -> bytes:
        return await run_in_threadpool(registry.render)

    body = await reused(request, "metrics").get(render)
    return Response(body, media_type=CONTENT_TYPE)
