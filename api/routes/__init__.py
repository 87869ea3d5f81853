"""One router per resource, gathered here."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import catalog, health, jobs, predictions, searches

v1 = APIRouter(prefix="/v1")
v1.include_router(jobs.router)
v1.include_router(predictions.router)
v1.include_router(searches.router)
v1.include_router(catalog.router)

__all__ = ["health", "v1"]
