"""``device: cuda`` jobs need a live GPU worker: refused at submit when there is none, or (with a
grace, for GPU workers that may still be starting) failed by the sweeper once they have waited
that long with still none — never queued for ever.

A worker is live when its heartbeat (:mod:`cnnlab.store.workers`) is at most
``settings.worker_live_seconds`` old.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.errors import NoGpuWorker
from cnnlab.lifecycle.transitions import move
from cnnlab.settings import Settings
from cnnlab.status import JobStatus
from cnnlab.store import workers
from cnnlab.store.tables import Job, utcnow

log = logging.getLogger(__name__)

_HOW = (
    'start one (`cnnlab worker --queues gpu` on a machine with a GPU) or use device "auto" or "cpu"'
)


def check_gpu_worker(
    session: Session, device: str | Collection[str] | None, settings: Settings
) -> None:
    """At submit: :class:`NoGpuWorker` for a ``cuda`` job (``device``: its spec's, or those of a
    search's trials) when no live worker serves the gpu queue, unless
    ``gpu_worker_grace_seconds`` lets it wait for one."""
    devices = {device} if device is None or isinstance(device, str) else set(device)
    if "cuda" not in devices or settings.gpu_worker_grace_seconds > 0:
        return
    if not workers.serves(session, workers.GPU_QUEUE, settings.worker_live_seconds):
        raise NoGpuWorker(
            "no live worker serves the gpu queue (none has sent a heartbeat in the last "
            f"{settings.worker_live_seconds:g}s): {_HOW}"
        )


def fail_jobs_without_gpu_worker(
    session: Session, settings: Settings, now: datetime | None = None
) -> list[str]:
    """The sweeper's part: with a grace set, fail every ``cuda`` job queued longer than the
    grace while no live worker serves the gpu queue (``queued → failed``, ``no_gpu_worker``).
    The ids it failed."""
    grace = settings.gpu_worker_grace_seconds
    if grace <= 0:
        return []
    now = now or utcnow()
    waiting = session.execute(
        select(Job.id, Job.spec).where(
            Job.status == JobStatus.queued, Job.created_at < now - timedelta(seconds=grace)
        )
    ).all()
    on_gpu = [job_id for job_id, spec in waiting if (spec or {}).get("device") == "cuda"]
    if not on_gpu or workers.serves(session, workers.GPU_QUEUE, settings.worker_live_seconds):
        return []
    error = NoGpuWorker(
        f"no live worker served the gpu queue within {grace:g}s of the job being queued: {_HOW}"
    ).to_dict()
    failed = [
        job_id
        for job_id in on_gpu
        if move(
            session,
            job_id,
            JobStatus.failed,
            where=(Job.status == JobStatus.queued,),
            error=error,
            finished_at=now,
        )
    ]
    for job_id in failed:
        log.warning("job %s: no live GPU worker after %gs queued; failed", job_id, grace)
    return failed
