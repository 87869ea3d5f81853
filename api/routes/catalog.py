"""What this server can train: datasets (with availability) and model architectures."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import DbDep, SettingsDep, UserDep
from api.schemas import ArchitectureRead, DatasetRead, ErrorResponse
from cnnlab.architectures import registry as architectures
from cnnlab.datasets.catalog import DATASETS
from cnnlab.datasets.sizes import describe
from cnnlab.status import DatasetStatus
from cnnlab.store.datasets import list_datasets as list_uploads

router = APIRouter(tags=["catalog"], responses={401: {"model": ErrorResponse}})


@router.get("/datasets", response_model=list[DatasetRead])
async def list_datasets(user: UserDep, settings: SettingsDep, db: DbDep) -> list[DatasetRead]:
    """Every dataset a spec may name: the built-ins (`kind: builtin`), whether their files are
    on this server, and their sizes (a dataset whose files are damaged is unavailable, with the
    `reason`); then the caller's uploads (`kind: uploaded`), described by their newest ready
    version."""
    # Mostly a few stat calls; but CIFAR-10's sizes are known only once its batches are decoded
    # (the first time, seconds), so off the event loop.
    infos = await run_in_threadpool(lambda: [describe(name, settings) for name in DATASETS])
    builtin = [DatasetRead.model_validate(info.to_dict()) for info in infos]
    return builtin + await db.read(_uploads, user.id)


def _uploads(session: Session, owner_id: int) -> list[DatasetRead]:
    out = []
    for dataset, versions in list_uploads(session, owner_id):
        ready = next((v for v in versions if v.status is DatasetStatus.ready), None)
        counts = (ready.counts or {}) if ready else {}
        out.append(
            DatasetRead(
                name=dataset.name,
                kind="uploaded",
                version=versions[0].version,
                status=versions[0].status,
                shape=(ready.channels, ready.image_size, ready.image_size)
                if ready and ready.channels and ready.image_size
                else None,
                class_names=list(ready.classes or []) if ready else [],
                mean=list(ready.mean or []) if ready else [],
                std=list(ready.std or []) if ready else [],
                train_size=counts.get("train", 0) + counts.get("val", 0) if ready else None,
                test_size=counts.get("test") if ready else None,
                available=ready is not None,
                tried=[],
            )
        )
    return out


@router.get("/architectures", response_model=list[ArchitectureRead])
async def list_architectures(user: UserDep) -> list[ArchitectureRead]:
    """The registered model architectures (a spec's `model.arch`), each with its options and
    their defaults (a spec's `model` option left null takes the default). This list was at
    `GET /v1/models`, which is now the model registry."""
    return [
        ArchitectureRead.model_validate(architectures.describe_architecture(name))
        for name in architectures.list_architectures()
    ]
