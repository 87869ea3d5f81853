"""What this server can train: datasets (with availability) and model architectures."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep, UserDep
from api.schemas import DatasetRead, ErrorResponse, ModelRead
from cnnlab.catalog import DATASETS, describe
from cnnlab.registry import list_models

router = APIRouter(tags=["catalog"], responses={401: {"model": ErrorResponse}})


@router.get("/datasets", response_model=list[DatasetRead])
async def list_datasets(user: UserDep, settings: SettingsDep) -> list[DatasetRead]:
    """Every dataset a spec may name, whether its files are on this server, and its sizes."""
    # A few stat calls, no database: cheaper than a trip to the threadpool.
    return [DatasetRead.model_validate(describe(name, settings).to_dict()) for name in DATASETS]


@router.get("/models", response_model=list[ModelRead])
async def list_archs(user: UserDep) -> list[ModelRead]:
    """The registered model architectures (a spec's `model.arch`)."""
    return [ModelRead(name=name) for name in list_models()]
