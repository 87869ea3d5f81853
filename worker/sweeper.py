"""The sweeper: sends work that no live worker holds back to the queue.

A job whose worker died keeps a lease that nobody renews; once it expires, a sweep puts the job
back in the queue (another worker resumes it from its last checkpoint) or, out of attempts, fails
it with ``worker_lost``. A queued job whose message was lost (a broker restarted without its
data) is sent again. Every worker's main process sweeps from a thread, and so does
``cnnlab serve``; sweeps in several processes are safe (each change is a conditional update).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from cnnlab import lifecycle
from cnnlab.lifecycle import LeaseSettings
from cnnlab.lifecycle.gpu import fail_jobs_without_gpu_worker
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from worker.queue import enqueue_job, queue_for

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


def waiting_messages(queue: str) -> int | None:
    """Messages waiting in ``queue`` on the broker (None when the broker cannot say)."""
    from worker.app import get_celery

    try:
        with get_celery().connection_for_read() as conn:
            declared = conn.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception:
        logger.debug("could not count the messages in %s", queue, exc_info=True)
        return None


class Sweeper:
    """Sweeps every ``interval`` seconds from a daemon thread until stopped.

    A sweep never overlaps a fork of this process: a child forked mid-sweep would inherit the
    locks (SQLite's, the connection pool's) that the sweeping thread held, and could hang.
    """

    def __init__(self, config: LeaseSettings | None = None) -> None:
        self.config = config or LeaseSettings()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cnnlab-sweeper", daemon=True)

    def start(self) -> None:
        os.register_at_fork(
            before=self._busy.acquire,
            after_in_parent=self._busy.release,
            after_in_child=self._busy.release,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.config.sweep_interval):
            with self._busy:
                try:
                    sweep_once(self.config)
                except Exception:
                    # The database or broker may be restarting; the next sweep tries again.
                    logger.warning("sweep failed", exc_info=True)
