"""The worker's only door to the database. Each function is one short unit of work: the caller
opens a session for it (``session_scope``) and closes it before training goes on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cnnlab.store.models import (
    Checkpoint,
    CheckpointKind,
    EpochMetric,
    Job,
    JobStatus,
    utcnow,
)
from cnnlab.store.searches import lock_search, refresh_search

METRIC_FIELDS = ("train_loss", "val_loss", "val_accuracy", "seconds", "images_per_second")


def claim_job(session: Session, job_id: str, worker_id: str) -> dict[str, Any] | None:
    """Move a queued job to running and return its spec; None if it is not queued any more
    (another worker has it, it ended, or it was cancelled): then there is nothing to do."""
    search_id = _lock_search_of(session, job_id)
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(
            status=JobStatus.running,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, utcnow()),
            worker_id=worker_id,
        )
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    if search_id is not None:
        refresh_search(session, search_id)
    spec: dict[str, Any] | None = session.scalar(select(Job.spec).where(Job.id == job_id))
    return spec


def resume_checkpoint(session: Session, job_id: str) -> bytes | None:
    return session.scalar(
        select(Checkpoint.data).where(
            Checkpoint.job_id == job_id, Checkpoint.kind == CheckpointKind.last
        )
    )


def record_epoch(
    session: Session, job_id: str, metrics: dict[str, Any], last: bytes, best: bytes | None
) -> None:
    """Store one epoch: its metrics row (replaced if the epoch is run again after a retry), the
    "last" checkpoint and, when this epoch improved, the "best"."""
    epoch = int(metrics["epoch"])
    values = {k: metrics.get(k) for k in METRIC_FIELDS}
    row = session.scalar(
        select(EpochMetric).where(EpochMetric.job_id == job_id, EpochMetric.epoch == epoch)
    )
    if row is None:
        session.add(EpochMetric(job_id=job_id, epoch=epoch, **values))
    else:
        for key, value in values.items():
            setattr(row, key, value)
    _put_checkpoint(session, job_id, CheckpointKind.last, epoch, last)
    if best is not None:
        _put_checkpoint(session, job_id, CheckpointKind.best, epoch, best)
    best_val = session.scalar(
        select(func.max(EpochMetric.val_accuracy)).where(EpochMetric.job_id == job_id)
    )
    session.execute(
        update(Job).where(Job.id == job_id).values(epoch=epoch, best_val_accuracy=best_val)
    )


def _put_checkpoint(
    session: Session, job_id: str, kind: CheckpointKind, epoch: int, data: bytes
) -> None:
    ckpt = session.scalar(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.kind == kind)
    )
    if ckpt is None:
        session.add(Checkpoint(job_id=job_id, kind=kind, epoch=epoch, data=data))
    else:
        ckpt.epoch, ckpt.data, ckpt.created_at = epoch, data, utcnow()
    session.flush()


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish_job(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    test_accuracy: float | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Record how the job ended; a search's status and best trial follow."""
    if not JobStatus(status).ended:
        raise ValueError(f"{status} is not a final status")
    search_id = _lock_search_of(session, job_id)
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=status, finished_at=utcnow(), test_accuracy=test_accuracy, error=error)
    )
    if search_id is not None:
        refresh_search(session, search_id)


def _lock_search_of(session: Session, job_id: str) -> str | None:
    """Lock the job's search, if any, before the job is written (the order every writer uses)."""
    search_id = session.scalar(select(Job.search_id).where(Job.id == job_id))
    if search_id is not None:
        lock_search(session, search_id)
    return search_id
