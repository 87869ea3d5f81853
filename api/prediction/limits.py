"""A ceiling on request bodies, so no route parses (or even holds) an oversized JSON document.

Routes that read their own bodies within their own limits (predictions; uploads) are left alone:
they are listed in :data:`OWN_BODY_ROUTES`, and the exemption goes by the route a request
matches (method and path template), never by how its path ends. A body that declares its
size is refused before it is read; one that does not is counted as it arrives.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, error_body

# Routes that read (and limit) their own bodies, by method and path template: the JSON body
# limit leaves their requests alone. A route that streams a raw upload within a limit of its own
# (e.g. ``("POST", "/v1/datasets")``) is added here; a test checks each entry is a real route.
OWN_BODY_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/jobs/{job_id}/predict"),
    ("POST", "/v1/models/{name}/predict"),
    ("POST", "/v1/models/{name}/batch-predictions"),
    ("POST", "/v1/datasets"),
)
_OWN_BODY = tuple((method, compile_path(path)[0]) for method, path in OWN_BODY_ROUTES)


def reads_own_body(method: str, path: str) -> bool:
    """Whether a request is for a route in :data:`OWN_BODY_ROUTES` (method and whole path
    matched as the router matches it: ``{name}`` is one path segment)."""
    return any(method == m and pattern.fullmatch(path) for m, pattern in _OWN_BODY)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body over {limit} bytes", limit=limit, limit_name="request")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or reads_own_body(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            exc = too_large(self.limit)
            await JSONResponse(error_body(exc), status_code=exc.status_code)(scope, receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    # Raised inside the body read; the error handlers turn it into the 413.
                    raise too_large(self.limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
