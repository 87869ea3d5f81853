"""A synchronous httpx client for the real ASGI app (what a TestClient does, on plain httpx).

The app runs on an event loop in a portal thread, exactly as under uvicorn: async handlers on the
loop, sync handlers and dependencies in its threadpool.
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI

from api.ratelimit import close_limits
from cnnlab.client._events import SSEParser


class ApiClient:
    def __init__(self, app: FastAPI) -> None:
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(start_blocking_portal())
        self.app = app
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        # What the app's shutdown does (this client runs no lifespan): its Redis connections.
        self._portal.call(close_limits, self.app)
        self._stack.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def upload_scope(token: str, name: str) -> dict[str, Any]:
    """The ASGI scope of ``POST /v1/datasets?name=NAME`` with a zip body, for tests that drive
    the app's body by hand (a client that goes away or stalls half way)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/datasets",
        "raw_path": b"/v1/datasets",
        "query_string": f"name={name}".encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/zip"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def sse_events(body: str) -> list[dict[str, Any]]:
    """A stream's events, read by the client's own parser: ``{"id", "event", "data"}`` each
    (comments and retry dropped; ``data`` parsed as JSON)."""
    parser = SSEParser()
    events = (parser.feed(line) for line in body.splitlines())
    return [{"id": e.id, "event": e.type, "data": e.data} for e in events if e is not None]
