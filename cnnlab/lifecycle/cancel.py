"""Cancelling: a queued job ends at once; a running one is asked to stop (within an epoch)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from cnnlab.lifecycle.transitions import move
from cnnlab.status import JobStatus
from cnnlab.store.jobs import get_job
from cnnlab.store.tables import Job, utcnow


def cancel_job(session: Session, owner_id: int, job_id: str) -> Job:
    """Cancel the owner's job; an ended job is left as it is. Safe against a worker claiming
    it at the same moment (both are conditional updates)."""
    job = get_job(session, owner_id, job_id)
    request_cancel(session, job.id)
    session.refresh(job)
    return job


def request_cancel(session: Session, job_id: str) -> None:
    if move(
        session,
        job_id,
        JobStatus.cancelled,
        where=(Job.status == JobStatus.queued,),
        cancel_requested=True,
        finished_at=utcnow(),
    ):
        return
    # Running: its worker reads the flag between batches and ends the job cancelled.
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(cancel_requested=True)
    )
