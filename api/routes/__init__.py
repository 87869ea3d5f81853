"""One router per resource, gathered here."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    catalog,
    datasets,
    events,
    health,
    insights,
    jobs,
    predictions,
    registry,
    scoring,
    searches,
    webhooks,
    workers,
)
from api.schemas import ErrorResponse

# Every /v1 route needs a token, is rate limited per token, and the error handlers give every
# invalid request the one error shape; documented here once, in place of FastAPI's default 422.
v1 = APIRouter(
    prefix="/v1",
    responses={
        401: {"model": ErrorResponse, "description": "no, bad or revoked token"},
        422: {"model": ErrorResponse, "description": "invalid request; `field` names the part"},
        429: {"model": ErrorResponse, "description": "over a request limit; see `Retry-After`"},
    },
)
v1.include_router(jobs.router)
v1.include_router(predictions.router)
v1.include_router(searches.router)
v1.include_router(catalog.router)
v1.include_router(datasets.router)
v1.include_router(registry.router)
v1.include_router(events.router)
v1.include_router(insights.router)
v1.include_router(workers.router)
v1.include_router(webhooks.router)
v1.include_router(scoring.models)
v1.include_router(scoring.evaluations)
v1.include_router(scoring.comparisons)
v1.include_router(scoring.batches)

__all__ = ["health", "v1"]
