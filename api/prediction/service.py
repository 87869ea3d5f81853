"""Predictions in the API process: models from the database, cached, run off the event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from sqlalchemy.orm import Session

from api.deps import Db
from api.errors import PayloadTooLarge
from api.prediction.arrays import check_instances
from api.prediction.uploads import Arrays, Images
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.predict import Predictor
from cnnlab.errors import BadInput
from cnnlab.lru import LRU
from cnnlab.store import jobs
from cnnlab.store import model_versions as registry

if TYPE_CHECKING:
    from cnnlab.store.model_views import Resolved

Key = tuple[str, int]  # job id, checkpoint epoch: a newer best checkpoint is a new key


class PredictorCache(LRU[Key, "Predictor"]):
    """Loaded models, least recently used first out, shared by the threadpool's workers."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        # Set by a serving process's startup (see api.main); None leaves torch as it is.
        self.torch_threads: int | None = None


_torch_threads_set = False


def set_torch_threads(threads: int) -> None:
    """Torch threads for inference in this process, set once before the first model loads.

    Requests already run in parallel in the threadpool; more intra-op threads per forward pass
    only add contention, and idle OpenMP threads spin on the CPU the requests need.
    """
    global _torch_threads_set
    if not _torch_threads_set:
        torch.set_num_threads(threads)
        _torch_threads_set = True


def model_for(session: Session, owner_id: int, job_id: str, cache: PredictorCache) -> Predictor:
    """The job's best model (404 for others' jobs, 409 before its first epoch ended)."""
    epoch = jobs.model_epoch(session, owner_id, job_id)

    def load() -> Predictor:
        if cache.torch_threads is not None:
            set_torch_threads(cache.torch_threads)
        _, data = jobs.model_bytes(session, job_id)
        return Predictor(loads(data), device="cpu")

    return cache.get((job_id, epoch), load)


def pixel_budget_exceeded(total: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the images hold {total} pixels in all; at most {limit} per request",
        pixels=total,
        limit=limit,
        limit_name="pixels",
    )


def predict(
    predictor: Predictor, payload: Images | Arrays, max_pixels: int | None = None
) -> list[dict[str, Any]]:
    """Every input in one forward pass; a bad one is a 422 naming it (by index and file name).

    Image files are checked by their headers first, all of them before any is decoded: each
    within the model's size cap, and together within ``max_pixels`` (413 past it)."""
    if isinstance(payload, Arrays):
        check_instances(payload.instances, predictor.shape)
        return predictor.predict_arrays(payload.instances)
    try:
        sizes = [predictor.image_size(i, blob) for i, blob in enumerate(payload.blobs)]
        total = sum(w * h for w, h in sizes)
        if max_pixels is not None and total > max_pixels:
            raise pixel_budget_exceeded(total, max_pixels)
        return predictor.predict_images(payload.blobs)
    except BadInput as exc:
        index = exc.item
        name = payload.names[index] if isinstance(index, int) else None
        exc.details["filename"] = name
        exc.message = f"{exc.message} (file {name})"
        raise


def predict_for_job(
    db: Db,
    owner_id: int,
    job_id: str,
    payload: Images | Arrays,
    cache: PredictorCache,
    max_pixels: int | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """The epoch of the model that answered, and its predictions. The session ends once the model
    is found: none is held through the forward pass."""
    predictor = db.call_read(model_for, owner_id, job_id, cache)
    return predictor.epoch, predict(predictor, payload, max_pixels)


# -- predictions by model name (the registry) -------------------------------------------------
def model_for_version(
    session: Session,
    owner_id: int,
    name: str,
    alias: str | None,
    version: int | None,
    cache: PredictorCache,
) -> tuple[Resolved, Predictor]:
    """The version the request names (alias, number, else ``production``, else the newest) and
    its model. Resolved from the database on every request, so a moved alias counts at once;
    cached by the version's id, as a version's weights never change."""
    resolved = registry.resolve(session, owner_id, name, alias=alias, version=version)

    def load() -> Predictor:
        if cache.torch_threads is not None:
            set_torch_threads(cache.torch_threads)
        return Predictor(loads(registry.data_by_id(session, resolved.version_id)), device="cpu")

    return resolved, cache.get((f"model-version:{resolved.version_id}", resolved.version), load)


def predict_for_model(
    db: Db,
    owner_id: int,
    name: str,
    payload: Images | Arrays,
    cache: PredictorCache,
    max_pixels: int | None = None,
    *,
    alias: str | None = None,
    version: int | None = None,
) -> tuple[Resolved, list[dict[str, Any]]]:
    """The version that answered, and its predictions; as :func:`predict_for_job`, no session
    is held through the forward pass."""
    resolved, predictor = db.call_read(model_for_version, owner_id, name, alias, version, cache)
    return resolved, predict(predictor, payload, max_pixels)
