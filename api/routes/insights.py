"""What the dashboard shows besides curves: sample training images and the confusion matrix.

``GET /v1/jobs/{id}/samples``: images from the job's training split with their labels (the
lab's ``visualize_images``). ``GET /v1/jobs/{id}/confusion``: the best model's confusion matrix
on the test split, once the job has succeeded; computed once per job and checkpoint, then cached.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse
from cnnlab.datasets.catalog import get_meta, uploads_in_scope
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.samples import training_samples
from cnnlab.engine.training import confusion_on_test
from cnnlab.lifecycle.datasets import fetch_uploads
from cnnlab.lru import LRU
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec
from cnnlab.store import jobs
from cnnlab.store.errors import Conflict
from cnnlab.store.tables import JobStatus

if TYPE_CHECKING:  # torch is imported by the first request that needs it
    import torch

    from cnnlab.engine.samples import SampleImage

CONFUSION_CACHE_SIZE = 32
MAX_SAMPLES = 64
# Confusion matrices and sample grids computed at once in one API process (each reads a dataset
# split and, for a matrix, runs the model over the whole test split).
EVALUATIONS_AT_ONCE = 1

router = APIRouter(
    prefix="/jobs",
    tags=["insights"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


class Sample(BaseModel):
    index: int = Field(description="position in the dataset's train split")
    label: int
    class_name: str
    png: str = Field(description="the image as a base64 PNG")

    @classmethod
    def build(cls, sample: SampleImage) -> Sample:
        png = base64.b64encode(sample.png).decode("ascii")
        return cls(index=sample.index, label=sample.label, class_name=sample.class_name, png=png)


class Samples(BaseModel):
    dataset: str
    class_names: list[str]
    items: list[Sample]


class Confusion(BaseModel):
    class_names: list[str]
    matrix: list[list[int]] = Field(description="rows: true class; columns: predicted class")
    accuracy: float
    count: int
    epoch: int = Field(description="the checkpoint evaluated (best validation accuracy)")

    @classmethod
    def build(cls, matrix: torch.Tensor, class_names: list[str], epoch: int) -> Confusion:
        count = int(matrix.sum())
        accuracy = float(matrix.diagonal().sum()) / max(1, count)
        return cls(
            class_names=class_names,
            matrix=matrix.tolist(),
            accuracy=accuracy,
            count=count,
            epoch=epoch,
        )


ConfusionCache = LRU[tuple[str, int], Confusion]  # by job id and checkpoint epoch


def confusion_cache(request: Request) -> ConfusionCache:
    """The app's cache of confusion matrices, made on first use."""
    state = request.app.state
    cache: ConfusionCache | None = getattr(state, "confusion_cache", None)
    if cache is None:
        cache = state.confusion_cache = ConfusionCache(CONFUSION_CACHE_SIZE)
    return cache


T = TypeVar("T")


def on_dataset(
    owner_id: int, dataset: str, settings: Settings, fn: Callable[..., T], *args: Any
) -> T:
    """``fn(*args)`` with the job's uploaded dataset (if it is one) known and its decoded
    tensors in this process's cache (fetched from the store once)."""
    url = settings.resolved_database_url
    with uploads_in_scope(fetch_uploads(owner_id, dataset, settings, url)):
        return fn(*args)


def sample_images(
    spec: dict[str, Any], n: int, settings: Settings, augmented: bool = False
) -> Samples:
    """The first ``n`` images of the job's training portion, with their labels (``augmented``:
    as the job's augmentation changes them)."""
    train_spec = TrainSpec.model_validate(spec)
    items = [
        Sample.build(s) for s in training_samples(train_spec, n, settings, augmented=augmented)
    ]
    class_names = list(get_meta(train_spec.dataset).class_names)
    return Samples(dataset=train_spec.dataset, class_names=class_names, items=items)


def compute_confusion(checkpoint: bytes, settings: Settings) -> Confusion:
    """The checkpoint's model on the whole test split of its dataset."""
    ckpt = loads(checkpoint)
    matrix = confusion_on_test(ckpt, settings=settings)
    return Confusion.build(matrix, list(ckpt["dataset"]["class_names"]), int(ckpt["epoch"]))


@router.get("/{job_id}/samples", response_model=Samples, responses={422: {"model": ErrorResponse}})
async def samples(
    job_id: str,
    request: Request,
    db: DbDep,
    user: UserDep,
    settings: SettingsDep,
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = 16,
    augmented: Annotated[
        bool, Query(description="as the job's `augment` changes them (its first epoch's draw)")
    ] = False,
) -> Samples:
    """Images from the job's training split with their labels."""
    job = await db.read(jobs.get_job, user.id, job_id)
    async with evaluation_gate(request):
        dataset = job.spec["dataset"]
        return await run_in_threadpool(
            on_dataset, user.id, dataset, settings, sample_images, job.spec, n, settings, augmented
        )


def _succeeded_model_epoch(session: Session, owner_id: int, job_id: str) -> int:
    """The epoch of the job's best model, once the job has succeeded (409 before)."""
    job = jobs.get_job(session, owner_id, job_id)
    if job.status is not JobStatus.succeeded:
        raise Conflict(
            f"job {job_id!r} is {job.status}: its test confusion matrix is computed once it "
            "has succeeded",
            job_id=job_id,
        )
    return jobs.model_epoch(session, owner_id, job_id)


@router.get(
    "/{job_id}/confusion",
    response_model=Confusion,
    responses={409: {"model": ErrorResponse, "description": "the job has not succeeded"}},
)
async def confusion(
    job_id: str, request: Request, db: DbDep, user: UserDep, settings: SettingsDep
) -> Confusion:
    """The best model's confusion matrix on the test split (rows: true, columns: predicted)."""
    epoch = await db.read(_succeeded_model_epoch, user.id, job_id)
    cache = confusion_cache(request)
    result = cache.get((job_id, epoch))
    if result is None:
        # One evaluation of a test split at a time in this process: the rest wait their turn
        # (and most then find the matrix cached), however many jobs are asked about at once.
        async with evaluation_gate(request):
            result = cache.get((job_id, epoch))
            if result is None:
                _, data = await db.read(jobs.model_bytes, job_id)
                job = await db.read(jobs.get_job, user.id, job_id)
                result = await run_in_threadpool(
                    on_dataset,
                    user.id,
                    job.spec["dataset"],
                    settings,
                    compute_confusion,
                    data,
                    settings,
                )
                cache.put((job_id, epoch), result)
    return result


def evaluation_gate(request: Request) -> asyncio.Semaphore:
    """The app's gate on heavy evaluations (confusion matrices, samples), made on first use."""
    state = request.app.state
    gate: asyncio.Semaphore | None = getattr(state, "evaluation_gate", None)
    if gate is None:
        gate = state.evaluation_gate = asyncio.Semaphore(EVALUATIONS_AT_ONCE)
    return gate
