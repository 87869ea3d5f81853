"""What the dashboard shows besides curves: sample training images and the confusion matrix.

``GET /v1/jobs/{id}/samples``: images from the job's training split with their labels (the
lab's ``visualize_images``). ``GET /v1/jobs/{id}/confusion``: the best model's confusion matrix
on the test split, once the job has succeeded; computed once per job and checkpoint, then cached.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse
from cnnlab.settings import Settings
from cnnlab.spec import TrainSpec
from cnnlab.store import jobs as store
from cnnlab.store.errors import Conflict
from cnnlab.store.models import JobStatus

CONFUSION_CACHE_SIZE = 32
EVAL_BATCH = 1000
MAX_SAMPLES = 64

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


class _Cache:
    """A small least-recently-used map, shared by the threadpool's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], Confusion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> Confusion | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[str, int], value: Confusion) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _cache(request: Request) -> _Cache:
    state = request.app.state
    cache: _Cache | None = getattr(state, "confusion_cache", None)
    if cache is None:
        cache = state.confusion_cache = _Cache(CONFUSION_CACHE_SIZE)
    return cache


def _png_b64(pixels: Any) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def sample_images(spec_dict: dict[str, Any], n: int, settings: Settings) -> Samples:
    """The first ``n`` images of the job's training portion (after its validation hold-out)."""
    from cnnlab.catalog import get_meta
    from cnnlab.data import load_split, split_indices
    from cnnlab.spec import train_count, val_count

    spec = TrainSpec.model_validate(spec_dict)
    meta = get_meta(spec.dataset)
    full = load_split(spec.dataset, train=True, settings=settings)
    train_idx, _ = split_indices(
        len(full), val_count(spec, len(full)), train_count(spec, len(full)), spec.seed
    )
    items = []
    for index in train_idx[:n].tolist():
        chw = full.images[index].numpy()
        pixels = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
        label = int(full.labels[index])
        items.append(
            Sample(
                index=index, label=label, class_name=meta.class_names[label], png=_png_b64(pixels)
            )
        )
    return Samples(dataset=spec.dataset, class_names=list(meta.class_names), items=items)


def confusion_matrix(checkpoint: bytes, settings: Settings) -> Confusion:
    """The checkpoint's model on the whole test split of its dataset."""
    import torch

    from cnnlab.checkpoint import load_model, loads
    from cnnlab.data import load_split
    from cnnlab.training import Normalize

    ckpt = loads(checkpoint)
    dataset = ckpt["dataset"]
    model = load_model(ckpt, "cpu")
    normalize = Normalize(dataset, torch.device("cpu"))
    test = load_split(dataset["name"], train=False, settings=settings)
    k = len(dataset["class_names"])
    matrix = torch.zeros(k, k, dtype=torch.int64)
    with torch.inference_mode():
        for start in range(0, len(test), EVAL_BATCH):
            images = test.images[start : start + EVAL_BATCH]
            labels = test.labels[start : start + EVAL_BATCH]
            predicted = model(normalize(images)).argmax(dim=1)
            matrix += torch.bincount(labels * k + predicted, minlength=k * k).view(k, k)
    count = int(matrix.sum())
    return Confusion(
        class_names=list(dataset["class_names"]),
        matrix=matrix.tolist(),
        accuracy=float(matrix.diagonal().sum()) / max(1, count),
        count=count,
        epoch=int(ckpt["epoch"]),
    )


@router.get("/{job_id}/samples", response_model=Samples, responses={422: {"model": ErrorResponse}})
async def samples(
    job_id: str,
    db: DbDep,
    user: UserDep,
    settings: SettingsDep,
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = 16,
) -> Samples:
    """Images from the job's training split with their labels."""
    job = await db.read(store.get_job, user.id, job_id)
    return await run_in_threadpool(sample_images, job.spec, n, settings)


def _succeeded_model_epoch(session: Session, owner_id: int, job_id: str) -> int:
    """The epoch of the job's best model, once the job has succeeded (409 before)."""
    job = store.get_job(session, owner_id, job_id)
    if job.status is not JobStatus.succeeded:
        raise Conflict(
            f"job {job_id!r} is {job.status}: its test confusion matrix is computed once it "
            "has succeeded",
            job_id=job_id,
        )
    return store.model_epoch(session, owner_id, job_id)


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
    cache = _cache(request)
    hit = cache.get((job_id, epoch))
    if hit is not None:
        return hit
    _, data = await db.read(store.model_bytes, job_id)
    result = await run_in_threadpool(confusion_matrix, data, settings)
    cache.put((job_id, epoch), result)
    return result
