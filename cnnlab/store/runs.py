"""The worker's only door to the database. Each function is one short unit of work: the caller
opens a session for it (``session_scope``) and closes it before training goes on.

The row is the truth, not the queue: a worker claims a job with a conditional update and holds a
lease it renews while training. ``attempts`` counts the claims and is the fencing token: a worker
whose lease expired and whose job was taken over finds every later write refused. A sweeper
(:func:`sweep`) sends abandoned and lost work back to the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
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
# Defaults of the worker's settings (``worker.config``), for callers that pass none.
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_QUEUED_GRACE_SECONDS = 120.0


@dataclass(frozen=True)
class Claim:
    """A job this worker now holds: its spec, and which attempt this is (the fencing token every
    later write of this worker presents)."""

    spec: dict[str, Any]
    attempt: int


def claim(
    session: Session,
    job_id: str,
    worker_id: str,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Claim | None:
    """Take a queued job, or a running one whose lease has expired (its worker died), with a
    conditional update; None when there is nothing to run: another worker holds a live lease,
    the job ended or was cancelled. A job found abandoned after ``max_attempts`` claims, or
    abandoned after a cancel request, is ended here instead."""
    now = utcnow()
    search_id = _lock_search_of(session, job_id)
    if _end_if_abandoned(session, job_id, now, max_attempts):
        if search_id is not None:
            refresh_search(session, search_id)
        return None
    claimable = or_(Job.status == JobStatus.queued, _expired(now))
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable)
        .values(
            status=JobStatus.running,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    if search_id is not None:
        refresh_search(session, search_id)
    row = session.execute(select(Job.spec, Job.attempts).where(Job.id == job_id)).one()
    return Claim(spec=row.spec, attempt=row.attempts)


def _expired(now: datetime) -> ColumnElement[bool]:
    # A running row without a lease was claimed before leases existed: its holder is unknown.
    return and_(
        Job.status == JobStatus.running,
        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
    )


def _held(job_id: str, attempt: int) -> ColumnElement[bool]:
    """The row is still running under this attempt's claim (else a newer claim fenced it out)."""
    return and_(Job.id == job_id, Job.status == JobStatus.running, Job.attempts == attempt)


def _end_if_abandoned(session: Session, job_id: str, now: datetime, max_attempts: int) -> bool:
    """End a running job whose lease expired when it must not run again: it used up its
    attempts (``worker_lost``), or it was asked to stop (``cancelled``). True if it ended."""
    row = session.execute(
        select(Job.attempts, Job.cancel_requested).where(Job.id == job_id, _expired(now))
    ).first()
    if row is None:
        return False
    if row.cancel_requested:
        values: dict[str, Any] = {"status": JobStatus.cancelled}
    elif row.attempts >= max_attempts:
        values = {"status": JobStatus.failed, "error": worker_lost_error(row.attempts)}
    else:
        return False
    ended = session.execute(
        update(Job)
        .where(Job.id == job_id, _expired(now), Job.attempts == row.attempts)
        .values(finished_at=now, lease_expires_at=None, **values)
    )
    return bool(ended.rowcount)  # type: ignore[attr-defined]


def worker_lost_error(attempts: int) -> dict[str, Any]:
    return {
        "type": "worker_lost",
        "message": f"the worker running this job stopped {attempts} time(s) before it ended "
        "(killed, out of host memory, or its machine went away); submit it again, perhaps "
        "with a smaller batch_size or model",
        "attempts": attempts,
    }


def renew_lease(session: Session, job_id: str, attempt: int, lease_seconds: float) -> bool:
    """Extend this attempt's lease; False when the job is no longer held by it (stop working)."""
    renewed = session.execute(
        update(Job)
        .where(_held(job_id, attempt))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


def holds(session: Session, job_id: str, attempt: int) -> bool:
    return session.scalar(select(func.count()).select_from(Job).where(_held(job_id, attempt))) == 1


def resume_checkpoint(session: Session, job_id: str) -> bytes | None:
    return session.scalar(
        select(Checkpoint.data).where(
            Checkpoint.job_id == job_id, Checkpoint.kind == CheckpointKind.last
        )
    )


def record_epoch(
    session: Session,
    job_id: str,
    metrics: dict[str, Any],
    last: bytes,
    best: bytes | None,
    *,
    attempt: int | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> bool:
    """Store one epoch: its metrics row (replaced if the epoch is run again after a retry), the
    "last" checkpoint and, when this epoch improved, the "best"; the lease is renewed.

    With ``attempt``, nothing is written unless that attempt still holds the job (False: a newer
    claim took it over, and this worker must stop)."""
    epoch = int(metrics["epoch"])
    owned = Job.id == job_id if attempt is None else _held(job_id, attempt)
    # The fence first: on PostgreSQL the row lock it takes also orders this against a takeover.
    fenced = session.execute(
        update(Job)
        .where(owned)
        .values(epoch=epoch, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    if attempt is not None and not fenced.rowcount:  # type: ignore[attr-defined]
        return False
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
    session.execute(update(Job).where(Job.id == job_id).values(best_val_accuracy=best_val))
    return True


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
    attempt: int | None = None,
) -> bool:
    """Record how the job ended; a search's status and best trial follow. With ``attempt``, only
    while that attempt still holds the job (False: it was taken over, nothing is written)."""
    if not JobStatus(status).ended:
        raise ValueError(f"{status} is not a final status")
    search_id = _lock_search_of(session, job_id)
    owned = Job.id == job_id if attempt is None else _held(job_id, attempt)
    ended = session.execute(
        update(Job)
        .where(owned)
        .values(
            status=status,
            finished_at=utcnow(),
            test_accuracy=test_accuracy,
            error=error,
            lease_expires_at=None,
        )
    )
    if not ended.rowcount:  # type: ignore[attr-defined]
        return False
    if search_id is not None:
        refresh_search(session, search_id)
    return True


@dataclass
class Sweep:
    """What one sweep did: jobs to send to the queue again (id, device), and jobs it ended."""

    requeue: list[tuple[str, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


def sweep(
    session: Session,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    queued_grace_seconds: float = DEFAULT_QUEUED_GRACE_SECONDS,
    resend_queued: Callable[[str], bool] = lambda device: True,
) -> Sweep:
    """Find work no live worker holds, and make it run (or end):

    - a running job whose lease expired (its worker died) goes back to ``queued`` to be sent
      again; one out of attempts fails with ``worker_lost``; one asked to stop ends cancelled;
    - a queued job sent longer than ``queued_grace_seconds`` ago and still unclaimed is sent
      again (its message may have been lost with a broker restart) when ``resend_queued(device)``
      says its queue has nothing waiting.

    Every change is a conditional update, so sweepers in several processes never act twice on a
    job, and a duplicate message is harmless (claims are conditional too). The caller commits,
    then sends ``requeue``.
    """
    now = utcnow()
    result = Sweep()
    for job_id in list(session.scalars(select(Job.id).where(_expired(now)))):
        search_id = _lock_search_of(session, job_id)
        if _end_if_abandoned(session, job_id, now, max_attempts):
            result.ended.append(job_id)
        else:
            back = session.execute(
                update(Job)
                .where(Job.id == job_id, _expired(now))
                .values(status=JobStatus.queued, lease_expires_at=None, enqueued_at=now)
            )
            if back.rowcount:  # type: ignore[attr-defined]
                result.requeue.append((job_id, _device_of(session, job_id)))
        if search_id is not None:
            refresh_search(session, search_id)

    stale = now - timedelta(seconds=queued_grace_seconds)
    sent_at = func.coalesce(Job.enqueued_at, Job.created_at)
    waiting = session.execute(
        select(Job.id, Job.spec).where(Job.status == JobStatus.queued, sent_at < stale)
    ).all()
    devices = {job_id: str(spec.get("device", "auto")) for job_id, spec in waiting}
    resend = {d: resend_queued(d) for d in set(devices.values())}
    for job_id, device in devices.items():
        if not resend[device]:
            continue
        again = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued, sent_at < stale)
            .values(enqueued_at=now)
        )
        if again.rowcount:  # type: ignore[attr-defined]
            result.requeue.append((job_id, device))
    return result


def _device_of(session: Session, job_id: str) -> str:
    spec: dict[str, Any] = session.scalar(select(Job.spec).where(Job.id == job_id)) or {}
    return str(spec.get("device", "auto"))


def _lock_search_of(session: Session, job_id: str) -> str | None:
    """Lock the job's search, if any, before the job is written (the order every writer uses)."""
    search_id = session.scalar(select(Job.search_id).where(Job.id == job_id))
    if search_id is not None:
        lock_search(session, search_id)
    return search_id
