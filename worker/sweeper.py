"""The sweeper: sends work that no live worker holds back to the queue.

A job whose worker died keeps a lease that nobody renews; once it expires, a sweep puts the job
back in the queue (another worker resumes it from its last checkpoint) or, out of attempts, fails
it with ``worker_lost``. A queued job whose message was lost (a broker restarted without its
data) is sent again. Every worker's main process sweeps from a thread, and so does
``cnnlab serve``; sweeps in several processes are safe (each change is a conditional update).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cnnlab import lifecycle
from cnnlab.lifecycle import LeaseSettings, datasets
from cnnlab.lifecycle.gpu import fail_jobs_without_gpu_worker
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from worker.app import get_celery
from worker.periodic import Periodic
from worker.queue import enqueue_ingest, enqueue_job, queue_for

logger = logging.getLogger(__name__)


def sweep_once(
    config: LeaseSettings | None = None,
    waiting: Callable[[str], int | None] | None = None,
) -> lifecycle.Sweep:
    """One sweep: commit the rows' changes, then send the messages. ``waiting(queue)`` counts the
    messages a queue holds (None: unknown); lost messages are only re-sent to an empty queue."""
    config = config or LeaseSettings()
    count = waiting or waiting_messages

    def resend_queued(device: str) -> bool:
        return not count(queue_for(device))

    with session_scope() as session:
        result = lifecycle.sweep(
            session,
            max_attempts=config.max_attempts,
            queued_grace_seconds=config.queued_grace_seconds,
            resend_queued=resend_queued,
        )
        fail_jobs_without_gpu_worker(session, get_settings())  # cuda jobs past the GPU grace
    with session_scope() as session:
        for search_id in lifecycle.live_searches(session):
            lifecycle.advance_search(session, search_id, enqueue=enqueue_job)
    _sweep_ingests(config)
    for job_id in result.ended:
        logger.warning("job %s: its worker was lost and it may not run again; ended", job_id)
    for job_id, device in result.requeue:
        logger.warning("job %s: no live worker holds it; sent to the queue again", job_id)
        try:
            enqueue_job(job_id, device)
        except Exception:
            # The row says when it was sent; the next sweep after the grace sends it again.
            logger.warning("job %s: could not send it again", job_id, exc_info=True)
    return result


def _sweep_ingests(config: LeaseSettings) -> None:
    """Uploaded dataset versions whose worker died (or whose message was lost) are sent again;
    out of attempts, they fail."""
    with session_scope() as session:
        again = datasets.sweep_ingests(
            session,
            max_attempts=config.max_attempts,
            queued_grace_seconds=config.queued_grace_seconds,
        )
    for version_id in again:
        logger.warning("dataset version %s: no live worker decodes it; sent again", version_id)
        try:
            enqueue_ingest(version_id)
        except Exception:
            logger.warning("dataset version %s: could not send it again", version_id, exc_info=True)


def waiting_messages(queue: str) -> int | None:
    """Messages waiting in ``queue`` on the broker (None when the broker cannot say)."""
    try:
        with get_celery().connection_for_read() as conn:
            declared = conn.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception:
        logger.debug("could not count the messages in %s", queue, exc_info=True)
        return None


class Sweeper(Periodic):
    """Sweeps every ``sweep_interval`` seconds from a daemon thread until stopped."""

    def __init__(self, config: LeaseSettings | None = None) -> None:
        self.config = config or LeaseSettings()
        super().__init__("cnnlab-sweeper", self.config.sweep_interval)

    def run_once(self) -> lifecycle.Sweep:
        return sweep_once(self.config)
