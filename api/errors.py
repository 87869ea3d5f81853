"""One place that turns errors into JSON: ``{"detail": {"type": ..., "message": ..., ...}}``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnnlab.errors import CnnlabError
from cnnlab.search.config import NESTED_FIELDS, SPEC_FIELDS, error_field

log = logging.getLogger(__name__)


class Unauthorized(CnnlabError):
    code = "unauthorized"
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012


class PayloadTooLarge(CnnlabError):
    code = "payload_too_large"
    status_code = 413


class UnsupportedMediaType(CnnlabError):
    code = "unsupported_media_type"
    status_code = 415


class InvalidRequest(CnnlabError):
    """A request body that is not what the route takes; ``field`` names the part at fault."""

    code = "invalid_request"
    status_code = 422

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)


_HTTP_TYPES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


# Pydantic puts the member's type in the location of an error in a union field (``val_size`` is
# ``int | float``: ``val_size.int``); the user's field is the path without it.
_UNION_TAGS = frozenset({"int", "float", "str", "bool", "none", "list", "dict"})


def _field(loc: Sequence[Any], kind: str = "") -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in NESTED_FIELDS:  # a search body's space, grid, pruner, …
        return error_field(parts, kind)
    parts = [p for i, p in enumerate(parts) if i == 0 or not _is_union_tag(p)]
    return ".".join(parts) or "body"


def _is_union_tag(part: str) -> bool:
    return part in _UNION_TAGS or "[" in part


def error_body(exc: CnnlabError) -> dict[str, Any]:
    return {"detail": exc.to_dict()}


async def _cnnlab_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CnnlabError)
    return JSONResponse(
        error_body(exc), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field(e.get("loc", ()), e.get("type", "")),
            "message": e.get("msg", ""),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    spec = str(first["field"]).split(".")[0] in SPEC_FIELDS
    detail = {
        "type": "invalid_spec" if spec else "invalid_request",
        "message": f"{first['field']}: {first['message']}",
        "field": first["field"],
        "errors": errors,
    }
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, CnnlabError):
        # Raised while FastAPI read the body (api.prediction.limits): the cause is the real answer.
        return await _cnnlab_error(request, exc.__cause__)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not parse a JSON body (nested too deeply for the parser, an integer too
        # long to convert): as invalid as any other malformed JSON, so 422 like the rest.
        reason = "nested too deeply" if isinstance(exc.__cause__, RecursionError) else "unreadable"
        return await _cnnlab_error(request, InvalidRequest("body", f"JSON {reason}"))
    detail = {"type": _HTTP_TYPES.get(exc.status_code, "http_error"), "message": str(exc.detail)}
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log under an id; the client gets the id, not the internals.
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled error [%s]", ref, exc_info=exc)
    detail = {"type": "internal", "message": "internal server error", "log_ref": ref}
    return JSONResponse({"detail": detail}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CnnlabError, _cnnlab_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
