"""The interactive API docs at ``/docs``, served entirely by this server (no CDN), and the
answers every ``/v1`` operation can give, added to the OpenAPI document once for all routes
(:func:`document_common_responses`).

FastAPI's own page loads Swagger UI from a CDN, which an offline server (or a strict Content
Security Policy) cannot reach. Here Swagger UI's files come from the ``fastapi-offline`` package,
which bundles them, and the page's start-up code is a file too, not an inline script, so the
page works under :mod:`api.security`'s policy (scripts and styles from this server only).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.errors import CnnlabError

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
# Swagger UI's own files (fastapi-offline ships them; nothing else of it is used).
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
CACHE = {"Cache-Control": "public, max-age=3600"}

INIT_JS = """window.ui = SwaggerUIBundle({
  url: "%(openapi_url)s",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>%(title)s - API docs</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="%(assets)s/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="%(assets)s/swagger-ui-bundle.js"></script>
  <script src="%(assets)s/init.js"></script>
</body>
</html>
"""


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
# What any /v1 operation may answer, whatever its route: the token gate (401; 429 past the
# user's rate or the address's failed token checks), the body limit (413), validation (422).
COMMON_RESPONSES: dict[str, dict[str, Any]] = {
    "401": {
        "description": "`unauthorized`: no, bad or revoked token",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": _ERROR,
    },
    "413": {
        "description": "`payload_too_large`: a body over the limit (`limit_name` says which)",
        "content": _ERROR,
    },
    "422": {
        "description": "`invalid_request` (or the route's own type): `field` names the part",
        "content": _ERROR,
    },
    "429": {
        "description": "`rate_limited`: over the user's requests a minute, or too many failed "
        "token checks from the address (`limit_name` says which); see `Retry-After`",
        "headers": _RETRY_AFTER,
        "content": _ERROR,
    },
}
# Operations with a body may also be sent one of a type they do not take.
BODY_RESPONSES: dict[str, dict[str, Any]] = {
    "415": {
        "description": "`unsupported_media_type`: a body of a type the route does not take",
        "content": _ERROR,
    },
}
# Statuses that come with Retry-After wherever a route lists them (503: `overloaded`).
RETRY_STATUSES = ("429", "503")


def add_common_responses(schema: dict[str, Any], prefix: str = "/v1") -> dict[str, Any]:
    """Add :data:`COMMON_RESPONSES` (and :data:`BODY_RESPONSES` to operations with a body) to
    every operation under ``prefix``, keeping a route's own description of a status; give every
    429 and 503 its ``Retry-After`` header."""
    for path, item in schema.get("paths", {}).items():
        if not (path == prefix or path.startswith(prefix + "/")):
            continue
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            common = COMMON_RESPONSES | (BODY_RESPONSES if "requestBody" in operation else {})
            for status, response in common.items():
                responses.setdefault(status, response)
            for status in RETRY_STATUSES:
                if status in responses:
                    headers = responses[status].setdefault("headers", {})
                    headers.setdefault("Retry-After", _RETRY_AFTER["Retry-After"])
    return schema


def document_common_responses(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list :data:`COMMON_RESPONSES` for every /v1 operation,
    whichever router it comes from."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_common_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class DocsAssetNotFound(CnnlabError):
    code = "not_found"
    status_code = 404


def install(app: FastAPI) -> None:
    """Serve the docs page and its files. The app must be built with ``docs_url=None`` (and
    ``redoc_url=None``: ReDoc injects inline styles, which the policy forbids)."""
    openapi_url = app.openapi_url or "/openapi.json"
    page = PAGE % {"title": app.title, "assets": ASSETS_URL}
    init_js = INIT_JS % {"openapi_url": openapi_url}

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get(ASSETS_URL + "/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(init_js, media_type="text/javascript; charset=utf-8", headers=CACHE)

    @app.get(ASSETS_URL + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise DocsAssetNotFound(f"no docs file {name!r}")
        return FileResponse(SWAGGER_DIR / name, media_type=ASSETS[name], headers=CACHE)
