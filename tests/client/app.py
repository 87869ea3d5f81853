"""The service's app with the dashboard, event and insight routers, for ``uvicorn --factory``.

``api.main.create_app`` mounts them itself; this adds whichever it does not (yet), so the tests
always run the real app with them.
"""

from __future__ import annotations

from fastapi import FastAPI

MOUNTS = (
    ("api.routes.events", "/v1", "/v1/jobs/{job_id}/events"),
    ("api.routes.insights", "/v1", "/v1/jobs/{job_id}/confusion"),
    ("api.dashboard", "", "/"),
)


def create_app() -> FastAPI:
    import importlib

    from api.main import create_app as create_service_app

    app = create_service_app()
    paths = {getattr(route, "path", None) for route in app.routes}
    for module, prefix, probe in MOUNTS:
        if probe not in paths:
            app.include_router(importlib.import_module(module).router, prefix=prefix)
    return app
