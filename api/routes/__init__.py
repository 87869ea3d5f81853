"""One router per resource, gathered here."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import catalog, events, health, insights, jobs, predictions, searches

v1 = APIRouter(prefix="/v1")
v1.include_router(jobs.router)
v1.include_router(predictions.router)
v1.include_router(searches.router)
v1.include_router(catalog.router)
v1.include_router(events.router)
v1.include_router(insights.router)

__all__ = ["health", "v1"]
