"""The training task: a thin adapter between the job rows and :func:`cnnlab.training.fit`.

Every database touch is its own short session through :mod:`cnnlab.store.runs`; no session is
held while training and no ORM object leaves one. Torch and the training code are imported when a
job runs, so importing this module (the worker's parent process does) stays cheap.

The message only wakes a worker; the job row decides. The worker claims the job (a queued one, or
a running one whose lease expired because its worker died), renews the lease while it trains, and
presents its attempt number with every write. If the job was taken over meanwhile, the writes are
refused and this worker stops without touching the row again.
"""

from __future__ import annotations

import logging
import os
import threading
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
from worker.config import WorkerSettings, get_worker_settings

if TYPE_CHECKING:
    from celery import Task

    from cnnlab.training import EpochReport

logger = logging.getLogger(__name__)

# How often a running job asks the database whether it was cancelled (or taken over).
CANCEL_POLL_S = 1.0


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self: Task, job_id: str) -> None:
    worker_id = f"{self.request.hostname or 'worker'}/{os.getpid()}"
    status = run_job(job_id, worker_id)
    if status is None and (self.request.delivery_info or {}).get("redelivered"):
        # The broker handed the job out again while another claim is live (or it ended); the
        # sweeper sends it again once that claim's lease expires.
        logger.warning("job %s was redelivered but is held or ended; left as it is", job_id)


def run_job(job_id: str, worker_id: str, config: WorkerSettings | None = None) -> JobStatus | None:
    """Claim, train and finish one job; returns its final status (None: not ours to run, or
    taken over by another worker while this one ran it)."""
    config = config or get_worker_settings()
    with session_scope() as session:
        held = runs.claim(
            session,
            job_id,
            worker_id,
            lease_seconds=config.lease_seconds,
            max_attempts=config.max_attempts,
        )
    if held is None:
        logger.info("job %s is not claimable (held elsewhere or ended); skipping", job_id)
        return None
    lease = Lease(job_id, held.attempt, config)
    logger.info("job %s started on %s (attempt %d)", job_id, worker_id, held.attempt)
    lease.start()
    try:
        status, fields = _outcome(job_id, held.spec, lease)
    finally:
        lease.stop()
    if lease.lost or not _finish(job_id, status, held.attempt, **fields):
        logger.warning("job %s was taken over by another worker; this attempt stops", job_id)
        return None
    logger.info("job %s %s", job_id, status)
    return status


def _outcome(job_id: str, spec: dict[str, Any], lease: Lease) -> tuple[JobStatus, dict[str, Any]]:
    try:
        status, test_accuracy = _train(job_id, spec, lease)
    except CnnlabError as exc:
        logger.info("job %s failed: %s", job_id, exc.message)
        return JobStatus.failed, {"error": exc.to_dict()}
    except Exception as exc:
        log_ref = uuid.uuid4().hex[:12]
        logger.exception("job %s failed unexpectedly [log_ref=%s]", job_id, log_ref)
        error = {"type": "internal", "message": f"internal error ({type(exc).__name__})"}
        return JobStatus.failed, {"error": {**error, "log_ref": log_ref}}
    return status, {"test_accuracy": test_accuracy}


def _train(job_id: str, spec_dict: dict[str, Any], lease: Lease) -> tuple[JobStatus, float | None]:
    from cnnlab import checkpoint
    from cnnlab.spec import TrainSpec
    from cnnlab.training import fit

    spec = TrainSpec.model_validate(spec_dict)
    with session_scope() as session:
        blob = runs.resume_checkpoint(session, job_id)
    resume = checkpoint.loads(blob) if blob is not None else None
    if resume is not None:
        logger.info("job %s resumes after epoch %s", job_id, resume.get("epoch"))

    def on_epoch(report: EpochReport) -> bool:
        last = checkpoint.dumps(report.checkpoint)
        best = last if report.improved else None
        with session_scope() as session:
            kept = runs.record_epoch(
                session,
                job_id,
                report.metrics.to_dict(),
                last,
                best,
                attempt=lease.attempt,
                lease_seconds=lease.config.lease_seconds,
            )
        if not kept:
            lease.lost = True
        return lease.lost  # True stops training

    result = fit(spec, on_epoch=on_epoch, should_stop=_stop_poller(lease), resume=resume)
    if result.cancelled:
        return JobStatus.cancelled, None
    return JobStatus.succeeded, result.test_accuracy


def _stop_poller(lease: Lease) -> Callable[[], bool]:
    """A ``should_stop`` that reads the database at most every :data:`CANCEL_POLL_S` seconds:
    stop when the job was cancelled, or when this attempt no longer holds it."""
    last_check = 0.0
    cancelled = False

    def should_stop() -> bool:
        nonlocal last_check, cancelled
        now = time.monotonic()
        if not (cancelled or lease.lost) and now - last_check >= CANCEL_POLL_S:
            last_check = now
            with session_scope() as session:
                cancelled = runs.cancel_requested(session, lease.job_id)
                if not runs.holds(session, lease.job_id, lease.attempt):
                    lease.lost = True
        return cancelled or lease.lost

    return should_stop


class Lease:
    """Keeps this attempt's claim on a job alive from a thread, so a long batch or evaluation
    never lets it lapse; ``lost`` turns True once the job is found held by a newer claim."""

    def __init__(self, job_id: str, attempt: int, config: WorkerSettings) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.config = config
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.config.renew_interval):
            try:
                with session_scope() as session:
                    held = runs.renew_lease(
                        session, self.job_id, self.attempt, self.config.lease_seconds
                    )
            except Exception:
                # The database may be restarting: keep trying until the lease is known lost.
                logger.warning("job %s: could not renew its lease", self.job_id, exc_info=True)
                continue
            if not held:
                self.lost = True
                return


def _finish(job_id: str, status: JobStatus, attempt: int, **fields: Any) -> bool:
    with session_scope() as session:
        return runs.finish_job(session, job_id, status, attempt=attempt, **fields)
