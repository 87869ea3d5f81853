"""What this server can train: datasets (with availability) and model architectures."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, UserDep
from api.schemas import ArchitectureRead, DatasetRead, ErrorResponse
from cnnlab.architectures.registry import describe_model, list_models
from cnnlab.datasets.catalog import DATASETS, describe

router = APIRouter(tags=["catalog"], responses={401: {"model": ErrorResponse}})


@router.get("/datasets", response_model=list[DatasetRead])
async def list_datasets(user: UserDep, settings: SettingsDep) -> list[DatasetRead]:
    """Every dataset a spec may name, whether its files are on this server, and its sizes; a
    dataset whose files are damaged is unavailable, with the `reason`."""
    # Mostly a few stat calls; but CIFAR-10's sizes are known only once its batches are decoded
    # (the first time, seconds), so off the event loop.
    infos = await run_in_threadpool(lambda: [describe(name, settings) for name in DATASETS])
    return [DatasetRead.model_validate(info.to_dict()) for info in infos]


@router.get("/architectures", response_model=list[ArchitectureRead])
async def list_architectures(user: UserDep) -> list[ArchitectureRead]:
    """The registered model architectures (a spec's `model.arch`), each with its options and
    their defaults (a spec's `model` option left null takes the default). This list was at
    `GET /v1/models`, which is now the model registry."""
    return [ArchitectureRead.model_validate(describe_model(name)) for name in list_models()]
