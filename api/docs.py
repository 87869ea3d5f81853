"""The interactive API docs at ``/docs``, served entirely by this server (no CDN).

FastAPI's own page loads Swagger UI from a CDN, which an offline server (or a strict Content
Security Policy) cannot reach. Here Swagger UI's files come from the ``fastapi-offline`` package,
which bundles them, and the page's start-up code is a file too, not an inline script, so the
page works under :mod:`api.security`'s policy (scripts and styles from this server only).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

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
