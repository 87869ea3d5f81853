"""Liveness, without authentication."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import Health
from cnnlab import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(version=__version__)
