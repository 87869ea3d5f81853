"""Hands committed jobs to the workers, by id, without importing the training code."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from cnnlab.store.db import after_commit, session_scope, session_url
from cnnlab.store.models import JobStatus

log = logging.getLogger(__name__)


def enqueue(job_id: str, device: str, url: str | None = None) -> None:
    """Send the job to its worker queue. If the broker cannot take it, the job fails with a
    ``queue_unavailable`` error rather than waiting forever for a message that was never sent."""
    try:
        from worker.queue import enqueue_job
    except ImportError:
        log.warning("worker package unavailable; job %s stays queued", job_id)
        return
    try:
        enqueue_job(job_id, device)
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)
        from cnnlab.store.runs import finish_job

        error = {
            "type": "queue_unavailable",
            "message": f"the job could not be handed to a worker queue ({type(exc).__name__}); "
            "submit it again",
        }
        with session_scope(url) as session:
            finish_job(session, job_id, JobStatus.failed, error=error)


def enqueue_after_commit(session: Session, job_id: str, device: str) -> None:
    url = session_url(session)
    after_commit(session, lambda: enqueue(job_id, device, url))
