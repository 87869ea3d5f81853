"""The application factory. ``uvicorn --factory api.main:create_app`` serves it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from api import dashboard, docs, upload_files
from api.auth import AuthCache, TokenGate
from api.errors import install_error_handlers
from api.metrics import install as install_metrics
from api.prediction.limits import BodyLimit
from api.prediction.service import PredictorCache
from api.ratelimit import close_limits
from api.routes import health, me, retention, v1
from api.security import SecurityHeaders
from api.settings import ApiSettings
from cnnlab import __version__
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import TrainSpec
from cnnlab.spec.validate import check_model
from cnnlab.store.db import dispose_engine

DESCRIPTION = """Train small CNNs on MNIST, Fashion-MNIST and CIFAR-10 as jobs; run grid searches;
download checkpoints; classify images with a trained job's model.

Every `/v1` route needs `Authorization: Bearer <token>` (`cnnlab token create USER`)."""


# Imported lazily by spec validation and predictions; each pulls in torch.
_WARM_MODULES = (
    "cnnlab.architectures.builtin",
    "cnnlab.engine.checkpoints",
    "cnnlab.engine.predict",
)


def _warm_imports() -> None:
    for name in _WARM_MODULES:
        importlib.import_module(name)

    # The first model built on the meta device imports torch._dynamo: seconds otherwise paid by
    # the first submitted job or search.
    check_model(TrainSpec(dataset="mnist"))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Process-wide settings belong to a serving process, not to every app built (tests build
    # many in one process); applied when the first model loads.
    app.state.predictors.torch_threads = app.state.api_settings.predict_threads
    # Spec validation and predictions need torch and the model registry; importing them takes
    # seconds, so do it in the background now rather than inside the first request.
    threading.Thread(target=_warm_imports, name="cnnlab-warm-imports", daemon=True).start()
    # Upload files a killed process left behind: now, then every few minutes.
    await upload_files.sweep(app.state.settings)
    sweeper = asyncio.create_task(upload_files.sweep_periodically(app.state.settings))
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await close_limits(app)
    app.state.predictors.clear()
    dispose_engine(close=True)


@cache
def _routes() -> tuple[BaseRoute, ...]:
    """Every app's routes, built once per process and shared by the apps it creates.

    Including a router builds each of its routes' request handling (parameter models, response
    fields): tenths of a second per app, which a process that creates many apps (the tests)
    would pay again for each. No route reads a setting but through ``request.app.state``, so one
    set serves every app. The cost: ``app.dependency_overrides`` does not reach these routes."""
    routes = APIRouter()
    routes.include_router(health.router)
    routes.include_router(v1)
    routes.include_router(retention.router, prefix="/v1")
    routes.include_router(me.router, prefix="/v1")
    routes.include_router(dashboard.router)
    return tuple(routes.routes)


# The OpenAPI document of the first app that built one: every app's is the same (the same
# routes, title and version), and building it takes a fifth of a second.
_openapi_text: list[str] = []


def _share_openapi(app: FastAPI) -> None:
    """Give ``app`` its own copy of the process's OpenAPI document, built once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            if not _openapi_text:
                _openapi_text.append(json.dumps(build()))
            app.openapi_schema = json.loads(_openapi_text[0])
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None, api_settings: ApiSettings | None = None
) -> FastAPI:
    """A new app. The database must be migrated already (``cnnlab db upgrade``; ``cnnlab api``
    and ``cnnlab serve`` do it before they start serving)."""
    app = FastAPI(
        title="cnnlab",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    app.state.api_settings = api_settings or ApiSettings()
    app.state.auth_cache = AuthCache(app.state.api_settings.auth_cache_seconds)
    app.state.predictors = PredictorCache(app.state.api_settings.predictor_cache_size)
    install_error_handlers(app)
    # Inside the body limit: a /v1 request's token is checked before anything reads its body.
    app.add_middleware(TokenGate, fastapi_app=app)
    app.add_middleware(BodyLimit, limit=app.state.api_settings.max_body_bytes)
    install_metrics(app)  # outermost: counts every answer, 413s and 500s included
    app.add_middleware(SecurityHeaders)  # CSP, nosniff, no-referrer, no framing: every answer
    app.router.routes.extend(_routes())
    docs.install(app)
    docs.document_common_responses(app)
    _share_openapi(app)
    return app
