"""Uploaded datasets on a worker: the ingest task, and the decoded tensors training reads.

Ingest is a thin adapter between a dataset version's row and :func:`cnnlab.datasets.ingest.ingest`:
claim the version under a lease (renewed with every progress report), copy the archive from the
store to a temporary file, decode it, store the decoded tensors as a blob (so training workers
never decode again), and mark the version ready, or failed with the reason. No session is held
while decoding. Workers keep the decoded tensors under ``CNNLAB_HOME/cache/datasets`` named by
their sha256, fetched from the store on first use: nothing is shared between machines but the
database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from celery import shared_task

from cnnlab.datasets.catalog import DATASETS, DatasetMeta
from cnnlab.datasets.ingest import IngestOptions, ingest, save_ingested
from cnnlab.datasets.loading import decoded_path
from cnnlab.engine.samples import class_grid_png
from cnnlab.errors import CnnlabError
from cnnlab.lifecycle import LeaseSettings
from cnnlab.lifecycle import datasets as lifecycle
from cnnlab.settings import Settings, get_settings
from cnnlab.status import DatasetStatus
from cnnlab.store import datasets as store
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Job
from worker.app import INGEST_TASK
from worker.leases import claim_with

if TYPE_CHECKING:
    from celery import Task

    from cnnlab.datasets.ingest import Ingested

logger = logging.getLogger(__name__)

# Progress is written (and the lease renewed) at most this often.
PROGRESS_EVERY_S = 0.5
# What an upload may ask of the ingest (query parameters of POST /v1/datasets).
OPTIONS = ("image_size", "resize", "test_size", "seed")
SPLITS = ("train", "val", "test")  # the ingest's split codes 0, 1, 2


class _LeaseLost(Exception):
    """The version was taken over by another worker, or deleted, while this one decoded it."""


@shared_task(name=INGEST_TASK, bind=True)
def ingest_dataset(self: Task, version_id: str) -> None:
    run_ingest(version_id, f"{self.request.hostname or 'worker'}/{os.getpid()}")


def run_ingest(
    version_id: str, worker_id: str, config: LeaseSettings | None = None
) -> DatasetStatus | None:
    """Claim, decode and finish one version; its final status (None: not ours to do)."""
    config = config or LeaseSettings()
    settings = get_settings()
    held = claim_with(lifecycle.claim_ingest, version_id, worker_id, config)
    if held is None:
        logger.info("dataset version %s is not claimable; skipping", version_id)
        return None
    logger.info(
        "dataset version %s: ingest on %s (attempt %d)", version_id, worker_id, held.attempt
    )
    work = settings.cache_dir / "ingest"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        try:
            ingested = _decode(held, Path(tmp), config, settings)
            decoded, checksum = _save(ingested, Path(tmp), settings)
        except _LeaseLost:
            logger.warning("dataset version %s was taken over or deleted; stopping", version_id)
            return None
        except CnnlabError as exc:
            logger.info("dataset version %s failed: %s", version_id, exc.message)
            return _finish(held, error=exc.to_dict())
        except Exception as exc:
            log_ref = uuid.uuid4().hex[:12]
            logger.exception("dataset version %s failed [log_ref=%s]", version_id, log_ref)
            error = {"type": "internal", "message": f"internal error ({type(exc).__name__})"}
            return _finish(held, error={**error, "log_ref": log_ref})
        samples, samples_checksum = _samples(ingested, Path(tmp))
        result = {
            **record(ingested),
            "decoded_checksum": checksum,
            "decoded_bytes": decoded.stat().st_size,
            "samples_checksum": samples_checksum,
        }
        blobs = [(decoded, checksum), (samples, samples_checksum)]
        return _finish(held, result=result, blobs=blobs)


def _decode(
    held: lifecycle.IngestClaim, tmp: Path, config: LeaseSettings, settings: Settings
) -> Ingested:
    archive = tmp / "archive"
    with session_scope() as session, open(archive, "wb") as out:
        store.write_blob(session, held.checksum, out)
    # What the upload asked for, within this deployment's limits on hostile archives.
    options = IngestOptions(
        **{k: v for k, v in held.options.items() if k in OPTIONS},
        max_files=settings.dataset_max_files,
        max_uncompressed_bytes=settings.dataset_max_uncompressed_bytes,
        max_ratio=settings.dataset_max_ratio,
        max_image_pixels=settings.dataset_max_image_pixels,
    )
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_S and done < total:
            return
        last = now
        with session_scope() as session:
            kept = lifecycle.report_progress(
                session, held.version_id, held.attempt, done, total, config.lease_seconds
            )
        if not kept:
            raise _LeaseLost

    progress(0, 0)
    result = ingest(archive, options, progress)
    archive.unlink()
    return result


def _save(ingested: Ingested, tmp: Path, settings: Settings) -> tuple[Path, str]:
    """The decoded tensors' file, moved into this worker's cache under their sha256."""
    staged = tmp / "decoded"
    save_ingested(ingested, staged)
    checksum = store.sha256_file(staged)
    path = decoded_path(checksum, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, path)
    return path, checksum


def _samples(ingested: Ingested, tmp: Path) -> tuple[Path, str]:
    """The sample grid (a few training images per class) as a file, and its checksum."""
    train = torch.nonzero(ingested.split != 2).flatten()
    png = class_grid_png(ingested.images[train], ingested.labels[train], list(ingested.classes))
    path = tmp / "samples.png"
    path.write_bytes(png)
    return path, hashlib.sha256(png).hexdigest()


def record(ingested: Ingested) -> dict[str, Any]:
    """The version's fields from an ingest's result."""
    split = ingested.split
    counts = {name: int((split == code).sum()) for code, name in enumerate(SPLITS)}
    return {
        "image_size": int(ingested.image_size),
        "channels": int(ingested.channels),
        "classes": list(ingested.classes),
        "counts": counts,
        "mean": [float(m) for m in ingested.mean],
        "std": [float(s) for s in ingested.std],
        "report": ingested.report,
        "progress": None,
        "error": None,
    }


def _finish(
    held: lifecycle.IngestClaim,
    *,
    result: dict[str, Any] | None = None,
    blobs: list[tuple[Path, str]] | None = None,
    error: dict[str, Any] | None = None,
) -> DatasetStatus | None:
    with session_scope() as session:
        done = lifecycle.finish_ingest(
            session, held.version_id, held.attempt, result=result, blobs=blobs, error=error
        )
    if not done:
        logger.warning("dataset version %s was taken over or deleted", held.version_id)
        return None
    status = DatasetStatus.failed if error is not None else DatasetStatus.ready
    logger.info("dataset version %s %s", held.version_id, status)
    return status


# -- training on an upload ---------------------------------------------------------------------


def uploaded_datasets(job_id: str, dataset: str) -> dict[str, DatasetMeta]:
    """The metas a job's pinned upload (``NAME@V``) needs in scope, its decoded tensors fetched
    into this worker's cache first; {} for a built-in dataset."""
    if dataset in DATASETS:
        return {}
    with session_scope() as session:
        owner_id = session.get_one(Job, job_id).owner_id
    return lifecycle.fetch_uploads(owner_id, dataset, get_settings())
