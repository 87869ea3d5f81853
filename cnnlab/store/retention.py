"""Retention: deleting ended jobs and searches, and what a user's storage holds.

Deleting is not a status change: a job (or a search with its trials) that has ended is removed
with its metrics and checkpoints; one still queued or running is refused (409), and a search's
trial goes only with its search. A registered model version is a frozen copy of the checkpoint
it came from (its ``job_id`` a pointer, not a foreign key), so it outlives the job.

A user's storage is the bytes of their jobs' checkpoints plus those of their model versions;
:func:`check_storage` refuses new work once it reaches ``CNNLAB_MAX_STORAGE_BYTES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cnnlab.errors import CnnlabError
from cnnlab.settings import Settings
from cnnlab.status import ENDED, SearchStatus
from cnnlab.store import datasets
from cnnlab.store.errors import Conflict, NotFound
from cnnlab.store.job_inputs import input_bytes_of
from cnnlab.store.jobs import get_job
from cnnlab.store.tables import (
    Checkpoint,
    EpochMetric,
    Job,
    ModelVersion,
    RegisteredModel,
    Search,
)

ENDED_SEARCH = tuple(s for s in SearchStatus if s.ended)


class StorageQuotaExceeded(CnnlabError):
    """The caller already stores as many bytes as one user may, or would with what is being
    written (``writing``: a ``model_version`` or a job's ``checkpoint``)."""

    code = "storage_quota"
    status_code = 422

    def __init__(self, used: int, limit: int, *, writing: str | None = None) -> None:
        would = "would store" if writing else "store"
        super().__init__(
            f"you {would} {used} bytes of checkpoints, model versions and datasets; at most "
            f"{limit} are allowed: delete ended jobs or searches (DELETE /v1/jobs/{{id}}, "
            "DELETE /v1/searches/{id}), model versions or uploaded datasets you no longer need",
            used_bytes=used,
            limit_bytes=limit,
            **({"writing": writing} if writing else {}),
        )


@dataclass(frozen=True)
class StorageUsage:
    checkpoint_bytes: int
    model_bytes: int
    dataset_bytes: int = 0  # uploaded archives and their decoded tensors
    input_bytes: int = 0  # archives of batch predictions that have not ended

    @property
    def used_bytes(self) -> int:
        return self.checkpoint_bytes + self.model_bytes + self.dataset_bytes + self.input_bytes


@dataclass(frozen=True)
class Deleted:
    """What a deletion removed: the jobs (a search's trials, or the one job) and their bytes."""

    jobs: int
    checkpoint_bytes: int


# -- usage -------------------------------------------------------------------------------------


def _checkpoint_bytes(session: Session, job_ids: object) -> int:
    stmt = select(func.coalesce(func.sum(func.length(Checkpoint.data)), 0)).where(
        Checkpoint.job_id.in_(job_ids)  # type: ignore[arg-type]
    )
    return int(session.scalar(stmt) or 0)


def storage_used(session: Session, owner_id: int) -> StorageUsage:
    """The owner's stored bytes: checkpoints (the length of each blob, not its contents, is
    read), model versions (their recorded size), uploaded datasets (theirs) and the archives of
    batch predictions not ended yet."""
    owned_jobs = select(Job.id).where(Job.owner_id == owner_id).scalar_subquery()
    models = select(func.coalesce(func.sum(ModelVersion.size_bytes), 0)).where(
        ModelVersion.model_id.in_(
            select(RegisteredModel.id).where(RegisteredModel.owner_id == owner_id)
        )
    )
    return StorageUsage(
        checkpoint_bytes=_checkpoint_bytes(session, owned_jobs),
        model_bytes=int(session.scalar(models) or 0),
        dataset_bytes=datasets.stored_bytes(session, owner_id),
        input_bytes=input_bytes_of(session, owner_id),
    )


def check_storage(
    session: Session,
    owner_id: int,
    settings: Settings,
    *,
    adding: int = 0,
    writing: str | None = None,
) -> None:
    """Raise :class:`StorageQuotaExceeded` if the owner already stores ``max_storage_bytes``
    (0: no limit), or would past it with ``adding`` bytes more (``writing`` says of what: a
    model version, a dataset upload). Called first thing by a submission: a new job's bytes are
    not known before it trains, so the check is that there is room left at all; its checkpoints
    are checked as they are written (:func:`cnnlab.lifecycle.record_epoch`)."""
    limit = settings.max_storage_bytes
    if not limit:
        return
    used = storage_used(session, owner_id).used_bytes
    if used >= limit or (adding and used + adding > limit):
        raise StorageQuotaExceeded(used + adding, limit, writing=writing)


# -- deletion ----------------------------------------------------------------------------------


def _delete_rows(session: Session, job_ids: Sequence[str]) -> int:
    """Remove the jobs' metrics and checkpoints; the bytes the checkpoints held."""
    freed = _checkpoint_bytes(session, job_ids)
    session.execute(delete(Checkpoint).where(Checkpoint.job_id.in_(job_ids)))
    session.execute(delete(EpochMetric).where(EpochMetric.job_id.in_(job_ids)))
    return freed


def delete_job(session: Session, owner_id: int, job_id: str) -> Deleted:
    """Delete an ended job with its metrics and checkpoints. :class:`NotFound` for a missing or
    someone else's job; :class:`Conflict` for one still queued or running, or a search's trial
    (deleted with its search). Model versions made from it stay."""
    job = get_job(session, owner_id, job_id)
    if job.search_id is not None:
        raise Conflict(
            f"job {job_id!r} is a trial of search {job.search_id!r}: delete its search",
            id=job_id,
            search_id=job.search_id,
        )
    if not job.status.ended:
        raise Conflict(
            f"job {job_id!r} is {job.status}: cancel it and wait for it to end before deleting",
            id=job_id,
            status=str(job.status),
        )
    freed = _delete_rows(session, [job_id])
    # Conditional, so a job that somehow moved since it was read is not deleted: the caller's
    # transaction (metrics and checkpoints included) is rolled back instead.
    result = session.execute(
        delete(Job).where(Job.id == job_id, Job.owner_id == owner_id, Job.status.in_(tuple(ENDED)))
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"job {job_id!r} changed while being deleted; try again", id=job_id)
    return Deleted(jobs=1, checkpoint_bytes=freed)


def delete_search(session: Session, owner_id: int, search_id: str) -> Deleted:
    """Delete an ended search with all its trials (their metrics and checkpoints).
    :class:`NotFound` for a missing or someone else's; :class:`Conflict` while it runs or is
    paused, or while any trial is queued or running."""
    # A write first: it takes the search row's lock (SQLite's write lock), so a retry of the
    # search (which locks the same row) cannot queue a trial while it is deleted.
    locked = session.execute(
        update(Search)
        .where(Search.id == search_id, Search.owner_id == owner_id)
        .values(cancel_requested=Search.cancel_requested)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        raise NotFound("search", search_id)
    search = session.get(Search, search_id, populate_existing=True)
    assert search is not None
    if search.status not in ENDED_SEARCH:
        raise Conflict(
            f"search {search_id!r} is {search.status}: cancel it and wait for it to end "
            "before deleting",
            id=search_id,
            status=str(search.status),
        )
    trials = session.execute(select(Job.id, Job.status).where(Job.search_id == search_id)).all()
    live = [job_id for job_id, status in trials if status not in ENDED]
    if live:
        raise Conflict(
            f"search {search_id!r} still has {len(live)} queued or running trials",
            id=search_id,
            live_trials=live,
        )
    job_ids = [job_id for job_id, _ in trials]
    freed = _delete_rows(session, job_ids)
    session.execute(delete(Job).where(Job.search_id == search_id))
    session.execute(delete(Search).where(Search.id == search_id))
    return Deleted(jobs=len(job_ids), checkpoint_bytes=freed)
