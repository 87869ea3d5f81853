"""Jobs as their owner sees them: submit, list, read, cancel, metrics and checkpoints."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from cnnlab.settings import Settings
from cnnlab.spec import TrainSpec
from cnnlab.store import quota
from cnnlab.store.errors import Conflict, NotFound
from cnnlab.store.models import Checkpoint, CheckpointKind, EpochMetric, Job, JobStatus, utcnow
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.queue import enqueue_after_commit


def submit_job(
    session: Session,
    owner_id: int,
    spec: TrainSpec,
    settings: Settings,
    *,
    max_active: int | None = None,
) -> Job:
    """Validate ``spec`` against this server's data, add the job; it is enqueued after commit.
    :class:`TooManyActiveJobs` if the owner already has ``max_active`` queued or running."""
    from cnnlab.validate import validate_spec

    validate_spec(spec, settings)
    quota.reserve(session, owner_id, 1, max_active)
    job = Job(owner_id=owner_id, spec=spec.model_dump(mode="json"), status=JobStatus.queued)
    session.add(job)
    session.flush()
    enqueue_after_commit(session, job.id, spec.device)
    return job


def list_jobs(
    session: Session,
    owner_id: int,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: JobStatus | None = None,
    search_id: str | None = None,
) -> Page[Job]:
    stmt = select(Job).where(Job.owner_id == owner_id)
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


def cancel_job(session: Session, owner_id: int, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop (within an epoch).

    Cancelling an ended job changes nothing. Conditional updates keep this safe against a worker
    claiming the job at the same moment.
    """
    job = get_job(session, owner_id, job_id)
    search_id = job.search_id
    if search_id is not None:
        from cnnlab.store.searches import lock_search

        lock_search(session, search_id)
    request_cancel(session, job.id)
    if search_id is not None:
        from cnnlab.store.searches import refresh_search

        refresh_search(session, search_id)
    session.refresh(job)
    return job


def request_cancel(session: Session, job_id: str) -> None:
    now = utcnow()
    cancelled = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, cancel_requested=True, finished_at=now)
    )
    if not cancelled.rowcount:  # type: ignore[attr-defined]
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.running)
            .values(cancel_requested=True)
        )


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
