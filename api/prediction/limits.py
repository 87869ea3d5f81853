"""A ceiling on request bodies, so no route parses (or even holds) an oversized JSON document.

Routes that read their own bodies within their own limits (predictions, by suffix; a dataset
upload, by method and path) are left alone. A body that declares its size is refused before it is
read; one that does not is counted as it arrives.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge, error_body


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body over {limit} bytes", limit=limit, limit_name="request")


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        exempt_suffixes: tuple[str, ...] = (),
        exempt_routes: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt_suffixes = exempt_suffixes
        self.exempt_routes = exempt_routes  # (method, path) pairs, matched exactly

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].endswith(self.exempt_suffixes)
            or (scope["method"], scope["path"]) in self.exempt_routes
        ):
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
