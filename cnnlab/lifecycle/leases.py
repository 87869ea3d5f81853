"""What a worker does to a job it runs: claim it, keep its lease, record epochs, finish it.

Each function is one short unit of work: the caller opens a session for it and closes it before
training goes on. The row is the truth, not the queue: a claim is a conditional update, and its
``attempt`` is the fencing token every later write presents; once another attempt took the job
over (this one's lease expired), every write of this one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from cnnlab.lifecycle.transitions import move
from cnnlab.settings import get_settings
from cnnlab.status import JobStatus
from cnnlab.store.retention import StorageQuotaExceeded, storage_used
from cnnlab.store.tables import (
    JOB_KIND_TRAIN,
    Checkpoint,
    CheckpointKind,
    EpochMetric,
    Job,
    utcnow,
)

METRIC_FIELDS = (
    "train_loss",
    "val_loss",
    "val_accuracy",
    "seconds",
    "images_per_second",
    "lr",
)
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_QUEUED_GRACE_SECONDS = 120.0


class LeaseSettings(BaseSettings):
    """How long a claim lasts, how often a job may be claimed, how often sweeps run; read from
    ``CNNLAB_*`` environment variables like the other settings."""

    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    # A running job's claim lasts this long unless its worker renews it (it does, a few times
    # per lease, while training). A dead worker's job is taken over this long after it died.
    lease_seconds: float = Field(default=DEFAULT_LEASE_SECONDS, gt=0)
    # Claims of one job before a job whose workers keep dying fails with ``worker_lost``.
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    # Seconds between sweeps for expired leases and lost messages (default: a quarter lease).
    sweep_seconds: float | None = Field(default=None, gt=0)
    # A queued job unclaimed this long after its message was sent is sent again, if its queue
    # has nothing waiting (the message was lost, e.g. with a broker restarted without its data).
    queued_grace_seconds: float = Field(default=DEFAULT_QUEUED_GRACE_SECONDS, gt=0)

    @property
    def sweep_interval(self) -> float:
        return self.sweep_seconds or self.lease_seconds / 4

    @property
    def renew_interval(self) -> float:
        """How often a training worker renews its lease: three chances before it expires."""
        return self.lease_seconds / 3


@dataclass(frozen=True)
class Claim:
    """A job this worker now holds: its spec, and which attempt this is (the fencing token every
    later write of this worker presents)."""

    spec: dict[str, Any]
    attempt: int
    kind: str = JOB_KIND_TRAIN  # what the job does: train, evaluate, compare, batch_predict


def claim(
    session: Session,
    job_id: str,
    worker_id: str,
    *,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Claim | None:
    """Take a queued job, or a running one whose lease has expired (its worker died); None when
    there is nothing to run: another worker holds a live lease, the job ended or was cancelled.
    A job found abandoned after ``max_attempts`` claims, or after a cancel request, ends here."""
    now = utcnow()
    if end_if_abandoned(session, job_id, now, max_attempts):
        return None
    claimed = move(
        session,
        job_id,
        JobStatus.running,
        where=(claimable(now),),
        attempts=Job.attempts + 1,
        started_at=func.coalesce(Job.started_at, now),
        worker_id=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    if not claimed:
        return None
    row = session.execute(select(Job.spec, Job.attempts, Job.kind).where(Job.id == job_id)).one()
    return Claim(spec=row.spec, attempt=row.attempts, kind=row.kind or JOB_KIND_TRAIN)


def claimable(now: datetime) -> ColumnElement[bool]:
    """A job a worker may claim now: queued, or running under an expired lease."""
    return or_(Job.status == JobStatus.queued, expired(now))


def expired(now: datetime) -> ColumnElement[bool]:
    # A running row without a lease was claimed before leases existed: its holder is unknown.
    return and_(
        Job.status == JobStatus.running,
        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
    )


def held(job_id: str, attempt: int) -> ColumnElement[bool]:
    """The row is still running under this attempt's claim (else a newer claim fenced it out)."""
    return and_(Job.id == job_id, Job.status == JobStatus.running, Job.attempts == attempt)


def end_if_abandoned(session: Session, job_id: str, now: datetime, max_attempts: int) -> bool:
    """End a running job whose lease expired when it must not run again: it used up its
    attempts (``worker_lost``), or it was asked to stop (``cancelled``). True if it ended."""
    row = session.execute(
        select(Job.attempts, Job.cancel_requested).where(Job.id == job_id, expired(now))
    ).first()
    if row is None:
        return False
    if row.cancel_requested:
        to, values = JobStatus.cancelled, {}
    elif row.attempts >= max_attempts:
        to, values = JobStatus.failed, {"error": worker_lost_error(row.attempts)}
    else:
        return False
    return move(
        session,
        job_id,
        to,
        where=(expired(now), Job.attempts == row.attempts),
        finished_at=now,
        lease_expires_at=None,
        **values,
    )


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
        .where(held(job_id, attempt))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


def holds(session: Session, job_id: str, attempt: int) -> bool:
    return session.scalar(select(func.count()).select_from(Job).where(held(job_id, attempt))) == 1


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
    claim took it over, and this worker must stop).

    Checkpoints count towards the owner's storage quota: when this epoch's would take the owner
    past ``max_storage_bytes``, nothing of it is written and the job fails with
    ``storage_quota`` (False: the worker stops); it keeps the checkpoints of earlier epochs."""
    epoch = int(metrics["epoch"])
    owned = Job.id == job_id if attempt is None else held(job_id, attempt)
    # The fence first: on PostgreSQL the row lock it takes also orders this against a takeover.
    fenced = session.execute(
        update(Job)
        .where(owned)
        .values(epoch=epoch, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    if attempt is not None and not fenced.rowcount:  # type: ignore[attr-defined]
        return False
    exceeded = _over_quota(session, job_id, last, best)
    if exceeded is not None:
        error = exceeded.to_dict() | {"epoch": epoch}
        finish_job(session, job_id, JobStatus.failed, error=error, attempt=attempt)
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


def _over_quota(
    session: Session, job_id: str, last: bytes, best: bytes | None
) -> StorageQuotaExceeded | None:
    """The quota error if writing these checkpoints (replacing the job's own of the same kinds)
    would take the job's owner past ``max_storage_bytes``; None when it fits, or no limit."""
    limit = get_settings().max_storage_bytes
    if not limit:
        return None
    owner_id = session.scalar(select(Job.owner_id).where(Job.id == job_id))
    if owner_id is None:
        return None
    kinds = [CheckpointKind.last] if best is None else [CheckpointKind.last, CheckpointKind.best]
    replaced = session.scalar(
        select(func.coalesce(func.sum(func.length(Checkpoint.data)), 0)).where(
            Checkpoint.job_id == job_id, Checkpoint.kind.in_(kinds)
        )
    )
    used = storage_used(session, owner_id).used_bytes - int(replaced or 0)
    after = used + len(last) + (len(best) if best is not None else 0)
    if after <= limit:
        return None
    return StorageQuotaExceeded(after, limit, writing="checkpoint")


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


def finish_job(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    test_accuracy: float | None = None,
    error: dict[str, Any] | None = None,
    attempt: int | None = None,
    stopped_early_at: int | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Record how the job ended (``stopped_early_at``: the epoch early stopping ended it at; for
    a job that found something, its ``result``); its search's status and best trial follow. With
    ``attempt``, only while that attempt still holds the job (False: it was taken over, nothing
    written)."""
    if not JobStatus(status).ended:
        raise ValueError(f"{status} is not a final status")
    extra = {} if result is None else {"result": result}
    return move(
        session,
        job_id,
        status,
        where=() if attempt is None else (held(job_id, attempt),),
        finished_at=utcnow(),
        test_accuracy=test_accuracy,
        error=error,
        lease_expires_at=None,
        stopped_early_at=stopped_early_at,
        **extra,
    )


def end_attempt(
    session: Session,
    job_id: str,
    attempt: int,
    trained: JobStatus,
    *,
    pruned: bool = False,
    lost: bool = False,
    **fields: Any,
) -> JobStatus | None:
    """How an attempt ends, given what happened to it: ``trained``, the status its training
    came to (with the ``fields`` of :func:`finish_job`); ``pruned``, its search's pruner ended
    the job after an epoch (:func:`~cnnlab.lifecycle.prune_if_due` already moved it); ``lost``,
    the attempt found the job held by a newer one.

    Pruned wins: the job ended at that epoch, whatever training did after it (stopped, ran
    out of time, failed), and nothing more is written. Otherwise the job finishes ``trained``
    while this attempt holds it. Returns the job's final status; None when the attempt was
    taken over (nothing written)."""
    if pruned:
        return JobStatus.pruned
    if lost or not finish_job(session, job_id, trained, attempt=attempt, **fields):
        return None
    return trained


def record_receipt(
    session: Session,
    job_id: str,
    attempt: int,
    environment: dict[str, Any],
    signature: dict[str, Any] | None = None,
) -> bool:
    """Write the receipt (and signature) of the attempt that holds the job; False if it no
    longer does. Not a status change: each attempt writes its own, the last one stays."""
    values: dict[str, Any] = {"environment": environment}
    if signature is not None:
        values["signature"] = signature
    written = session.execute(update(Job).where(held(job_id, attempt)).values(**values))
    return bool(written.rowcount)  # type: ignore[attr-defined]
