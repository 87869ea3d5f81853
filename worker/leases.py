"""A worker's hold on the job it runs: the lease kept alive from a thread, the polls that stop
training (cancelled, taken over, past its time limit), the claim and the fenced finish. Shared
by the training task, the scoring tasks and the dataset task."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cnnlab import lifecycle
from cnnlab.errors import TimeLimitExceeded
from cnnlab.lifecycle import LeaseSettings
from cnnlab.store import jobs
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus

logger = logging.getLogger(__name__)


# How often a running job asks the database whether it was cancelled (or taken over).
CANCEL_POLL_S = 1.0


class Lease:
    """Keeps this attempt's claim on a job alive from a thread, so a long batch or evaluation
    never lets it lapse; ``lost`` turns True once the job is found held by a newer claim."""

    def __init__(self, job_id: str, attempt: int, config: LeaseSettings) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.config = config
        self.lost = False
        self.pruned = False  # ended by its search's pruner after an epoch
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
                    held = lifecycle.renew_lease(
                        session, self.job_id, self.attempt, self.config.lease_seconds
                    )
            except Exception:
                # The database may be restarting: keep trying until the lease is known lost.
                logger.warning("job %s: could not renew its lease", self.job_id, exc_info=True)
                continue
            if not held:
                self.lost = True
                return


class TimeLimit:
    """One attempt's time budget, counted from its start: ``reached`` once past it. Checked
    between batches (with cancellation), so the attempt stops at a batch boundary, keeps the
    epochs it recorded, and fails with ``time_limit_exceeded``."""

    def __init__(self, seconds: float | None, scale: int = 1) -> None:
        self.seconds = None if seconds is None else seconds * scale
        self.started = time.monotonic()
        self.reached = False

    def check(self) -> bool:
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            self.reached = True
        return self.reached

    def error(self, epoch: int) -> TimeLimitExceeded:
        assert self.seconds is not None
        return TimeLimitExceeded(time.monotonic() - self.started, self.seconds, epoch)


def stop_poller(lease: Lease, limit: TimeLimit | None = None) -> Callable[[], bool]:
    """A ``should_stop`` that reads the database at most every :data:`CANCEL_POLL_S` seconds:
    stop when the job was cancelled, or when this attempt no longer holds it; and, without a
    query, once the attempt is past its time ``limit``."""
    last_check = 0.0
    cancelled = False

    def should_stop() -> bool:
        nonlocal last_check, cancelled
        now = time.monotonic()
        if not (cancelled or lease.lost) and now - last_check >= CANCEL_POLL_S:
            last_check = now
            with session_scope() as session:
                cancelled = jobs.cancel_requested(session, lease.job_id)
                if not lifecycle.holds(session, lease.job_id, lease.attempt):
                    lease.lost = True
        return cancelled or lease.lost or (limit is not None and limit.check())

    return should_stop


Held = TypeVar("Held")


def claim_with(
    claim: Callable[..., Held], key: str, worker_id: str, config: LeaseSettings, **options: Any
) -> Held:
    """What ``claim`` (a lifecycle claim: of a job, of its pack's siblings, of a dataset
    version) gives ``worker_id`` for ``key`` on ``config``'s lease terms, in a short session."""
    with session_scope() as session:
        return claim(
            session,
            key,
            worker_id,
            lease_seconds=config.lease_seconds,
            max_attempts=config.max_attempts,
            **options,
        )


def finish(job_id: str, status: JobStatus, attempt: int, **fields: Any) -> bool:
    with session_scope() as session:
        return lifecycle.finish_job(session, job_id, status, attempt=attempt, **fields)
