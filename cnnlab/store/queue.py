"""Hands committed jobs to the workers, by id, without importing the training code."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from cnnlab.store.db import after_commit

log = logging.getLogger(__name__)


def enqueue(job_id: str, device: str) -> None:
    try:
        from worker.queue import enqueue_job
    except ImportError:
        log.warning("worker package unavailable; job %s stays queued", job_id)
        return
    try:
        enqueue_job(job_id, device)
    except Exception:
        # The row is committed and stays queued; the log says why no worker picked it up.
        log.exception("could not enqueue job %s", job_id)


def enqueue_after_commit(session: Session, job_id: str, device: str) -> None:
    after_commit(session, lambda: enqueue(job_id, device))
