"""The training task: a thin adapter between the job rows and :func:`cnnlab.training.fit`.

Every database touch is its own short session through :mod:`cnnlab.store.runs`; no session is
held while training and no ORM object leaves one. Torch and the training code are imported when a
job runs, so importing this module (the worker's parent process does) stays cheap.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import shared_task

from cnnlab.errors import CnnlabError
from cnnlab.store import runs
from cnnlab.store.db import session_scope
from cnnlab.store.models import JobStatus
from worker.app import TRAIN_TASK

if TYPE_CHECKING:
    from celery import Task

    from cnnlab.training import EpochReport

logger = logging.getLogger(__name__)

# How often a running job asks the database whether it was cancelled.
CANCEL_POLL_S = 1.0


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self: Task, job_id: str) -> None:
    worker_id = f"{self.request.hostname or 'worker'}/{os.getpid()}"
    status = run_job(job_id, worker_id)
    if status is None and (self.request.delivery_info or {}).get("redelivered"):
        # The broker handed the job out again (its worker was lost or stopped mid-job); the row
        # is not queued, so this attempt leaves it as it is.
        logger.warning("job %s was redelivered but is not queued; left as it is", job_id)


def run_job(job_id: str, worker_id: str) -> JobStatus | None:
    """Claim, train and finish one job; returns its final status (None: not ours to run)."""
    with session_scope() as session:
        spec = runs.claim_job(session, job_id, worker_id)
    if spec is None:
        logger.info("job %s is not queued; skipping", job_id)
        return None
    logger.info("job %s started on %s", job_id, worker_id)
    try:
        status, test_accuracy = _train(job_id, spec)
    except CnnlabError as exc:
        logger.info("job %s failed: %s", job_id, exc.message)
        _finish(job_id, JobStatus.failed, error=exc.to_dict())
        return JobStatus.failed
    except Exception as exc:
        log_ref = uuid.uuid4().hex[:12]
        logger.exception("job %s failed unexpectedly [log_ref=%s]", job_id, log_ref)
        error = {"type": "internal", "message": f"internal error ({type(exc).__name__})"}
        _finish(job_id, JobStatus.failed, error={**error, "log_ref": log_ref})
        return JobStatus.failed
    _finish(job_id, status, test_accuracy=test_accuracy)
    logger.info("job %s %s", job_id, status)
    return status


def _train(job_id: str, spec_dict: dict[str, Any]) -> tuple[JobStatus, float | None]:
    from cnnlab import checkpoint
    from cnnlab.spec import TrainSpec
    from cnnlab.training import fit

    spec = TrainSpec.model_validate(spec_dict)
    with session_scope() as session:
        blob = runs.resume_checkpoint(session, job_id)
    resume = checkpoint.loads(blob) if blob is not None else None
    if resume is not None:
        logger.info("job %s resumes after epoch %s", job_id, resume.get("epoch"))

    def on_epoch(report: EpochReport) -> None:
        last = checkpoint.dumps(report.checkpoint)
        best = last if report.improved else None
        with session_scope() as session:
            runs.record_epoch(session, job_id, report.metrics.to_dict(), last, best)

    result = fit(spec, on_epoch=on_epoch, should_stop=_cancel_poller(job_id), resume=resume)
    if result.cancelled:
        return JobStatus.cancelled, None
    return JobStatus.succeeded, result.test_accuracy


def _cancel_poller(job_id: str) -> Callable[[], bool]:
    """A ``should_stop`` that reads the database at most every :data:`CANCEL_POLL_S` seconds."""
    last_check = 0.0
    cancelled = False

    def should_stop() -> bool:
        nonlocal last_check, cancelled
        now = time.monotonic()
        if not cancelled and now - last_check >= CANCEL_POLL_S:
            last_check = now
            with session_scope() as session:
                cancelled = runs.cancel_requested(session, job_id)
        return cancelled

    return should_stop


def _finish(job_id: str, status: JobStatus, **fields: Any) -> None:
    with session_scope() as session:
        runs.finish_job(session, job_id, status, **fields)
