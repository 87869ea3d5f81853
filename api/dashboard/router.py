"""Serves the dashboard: ``/`` is the page, ``/static/<file>`` its scripts and styles.

The files are plain HTML, CSS and JavaScript in ``static/``; there is no build step. The page
signs in with an API token and calls the ``/v1`` API itself.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import CnnlabError

STATIC = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# The page itself is always revalidated, so a new release is picked up; static files may be
# cached for a while (their URLs carry the version).
NO_CACHE = {"Cache-Control": "no-cache"}
STATIC_CACHE = {"Cache-Control": "public, max-age=3600"}

router = APIRouter(include_in_schema=False)


class StaticNotFound(CnnlabError):
    code = "not_found"
    status_code = 404


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type=MEDIA_TYPES[".html"], headers=NO_CACHE)


@router.get("/static/{name:path}")
def static_file(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    # Only plain files inside static/ with a known type: no "..", no directory listings.
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise StaticNotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=STATIC_CACHE)
