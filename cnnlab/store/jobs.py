"""Reading jobs: as their owner sees them (list, read, metrics, checkpoints), and what a worker
reads of the job it runs. Status changes are :mod:`cnnlab.lifecycle`'s."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from cnnlab.store.errors import Conflict, NotFound
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.tables import (
    JOB_KIND_TRAIN,
    Checkpoint,
    CheckpointKind,
    EpochMetric,
    Job,
    JobStatus,
    JobTag,
)


def list_jobs(
    session: Session,
    owner_id: int,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: JobStatus | None = None,
    search_id: str | None = None,
    kind: str | None = JOB_KIND_TRAIN,
    tag: str | None = None,
    name: str | None = None,
) -> Page[Job]:
    """The owner's jobs of ``kind`` (None: every kind), newest first; with ``tag``, those
    tagged so; with ``name``, those whose name contains it (any case)."""
    stmt = select(Job).where(Job.owner_id == owner_id)
    if tag is not None:
        stmt = stmt.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    if name is not None:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(func.lower(Job.name).like(f"%{escaped.lower()}%", escape="\\"))
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if search_id is not None:
        stmt = stmt.where(Job.search_id == search_id)
    return paginate(session, stmt, Job.created_at, Job.id, limit=limit, cursor=cursor)


# One query on id and owner: someone else's job takes the same path as a missing one. Built
# once: polling clients read jobs many times a second, and building a statement costs more than
# running it.
_OWNED_JOB = select(Job).where(Job.id == bindparam("job_id"), Job.owner_id == bindparam("owner"))


def get_job(session: Session, owner_id: int, job_id: str) -> Job:
    job = session.scalar(_OWNED_JOB, {"job_id": job_id, "owner": owner_id})
    if job is None:
        raise NotFound("job", job_id)
    return job


def job_metrics(session: Session, owner_id: int, job_id: str) -> list[EpochMetric]:
    get_job(session, owner_id, job_id)
    return metrics_after(session, job_id)


def metrics_after(session: Session, job_id: str, epoch: int = 0) -> list[EpochMetric]:
    """The job's metrics rows past ``epoch``, in order (the caller has checked the owner)."""
    stmt = (
        select(EpochMetric)
        .where(EpochMetric.job_id == job_id, EpochMetric.epoch > epoch)
        .order_by(EpochMetric.epoch)
    )
    return list(session.scalars(stmt))


def get_checkpoint(
    session: Session, owner_id: int, job_id: str, kind: CheckpointKind = CheckpointKind.best
) -> Checkpoint:
    """The job's checkpoint of ``kind``; :class:`Conflict` until the first epoch has ended."""
    get_job(session, owner_id, job_id)
    ckpt = session.scalar(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.kind == kind)
    )
    if ckpt is None:
        raise Conflict(
            f"job {job_id!r} has no {kind} checkpoint yet: it appears after the first epoch",
            job_id=job_id,
        )
    return ckpt


# Every prediction asks for it: one query for the owner check and the epoch together.
_OWNED_MODEL_EPOCH = (
    select(Checkpoint.epoch)
    .join(Job, Job.id == Checkpoint.job_id)
    .where(
        Checkpoint.job_id == bindparam("job_id"),
        Checkpoint.kind == CheckpointKind.best,
        Job.owner_id == bindparam("owner"),
    )
)


def model_epoch(session: Session, owner_id: int, job_id: str) -> int:
    """The epoch of the job's best checkpoint (the model predictions use), without its bytes."""
    epoch = session.scalar(_OWNED_MODEL_EPOCH, {"job_id": job_id, "owner": owner_id})
    if epoch is None:
        get_job(session, owner_id, job_id)  # 404 rather than 409 for a job not the caller's
        raise Conflict(
            f"job {job_id!r} has no model yet: it appears after the first epoch", job_id=job_id
        )
    return epoch


def model_bytes(session: Session, job_id: str) -> tuple[int, bytes]:
    """The epoch and bytes of the job's best checkpoint (the caller has checked the owner)."""
    row = session.execute(
        select(Checkpoint.epoch, Checkpoint.data).where(
            Checkpoint.job_id == job_id, Checkpoint.kind == CheckpointKind.best
        )
    ).first()
    if row is None:
        raise Conflict(f"job {job_id!r} has no model yet", job_id=job_id)
    return row[0], row[1]


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def resume_checkpoint(session: Session, job_id: str) -> bytes | None:
    """The job's "last" checkpoint, which a new attempt resumes from."""
    return session.scalar(
        select(Checkpoint.data).where(
            Checkpoint.job_id == job_id, Checkpoint.kind == CheckpointKind.last
        )
    )


def get_job_of_kind(session: Session, owner_id: int, job_id: str, kind: str, what: str) -> Job:
    """The owner's job of ``kind``, :class:`NotFound` as ``what`` for any other."""
    job = session.scalar(_OWNED_JOB, {"job_id": job_id, "owner": owner_id})
    if job is None or job.kind != kind:
        raise NotFound(what, job_id)
    return job


def model_jobs(
    session: Session, owner_id: int, model_id: str, kind: str, limit: int = 500
) -> list[Job]:
    """The owner's jobs of ``kind`` on one registered model, newest first."""
    stmt = (
        select(Job)
        .where(Job.owner_id == owner_id, Job.model_id == model_id, Job.kind == kind)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
