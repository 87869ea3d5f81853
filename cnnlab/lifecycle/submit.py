"""New jobs: validated, added as ``queued``, sent to the workers after commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import uploads_in_scope
from cnnlab.lifecycle import quota
from cnnlab.lifecycle.admission import admit
from cnnlab.lifecycle.datasets import resolve_dataset
from cnnlab.lifecycle.transitions import move
from cnnlab.lifecycle.warm_start import pin_init
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec
from cnnlab.status import JobStatus
from cnnlab.store.db import after_commit, session_scope, session_url
from cnnlab.store.job_labels import apply_labels
from cnnlab.store.retention import check_storage
from cnnlab.store.tables import Job, utcnow

log = logging.getLogger(__name__)

# Sends a committed job to its workers' queue: ``enqueue(job_id, device)``. The API and the
# worker pass ``worker.queue.enqueue_job``; None leaves the job queued for someone else to send.
Enqueue = Callable[[str, str], None]


def submit_job(
    session: Session,
    owner_id: int,
    spec: TrainSpec,
    settings: Settings,
    *,
    enqueue: Enqueue | None,
    max_active: int | None = None,
    labels: dict[str, Any] | None = None,
) -> Job:
    """Validate ``spec`` against this server's data and add the job; it is sent after commit.
    :class:`TooManyActiveJobs` if the owner already has ``max_active`` queued or running.
    ``labels``: its ``name``, ``tags`` and ``notes``."""
    check_storage(session, owner_id, settings)  # 422 storage_quota when full
    spec, uploads = resolve_dataset(session, owner_id, spec)  # NAME → NAME@V, the newest ready
    with uploads_in_scope(uploads):
        admit(session, spec, settings)  # 422: spec, budget, data; no_gpu_worker when none is live
    spec = pin_init(session, owner_id, spec)  # 404 / 422 naming init
    quota.reserve(session, owner_id, 1, max_active)
    job = Job(owner_id=owner_id, spec=spec.model_dump(mode="json"), status=JobStatus.queued)
    session.add(job)
    session.flush()
    if labels:
        apply_labels(session, job, **labels)
    send_after_commit(session, job.id, spec.device, enqueue)
    return job


def send_after_commit(session: Session, job_id: str, device: str, enqueue: Enqueue | None) -> None:
    if enqueue is None:
        return
    url = session_url(session)
    after_commit(session, lambda: _send(job_id, device, enqueue, url))


def _send(job_id: str, device: str, enqueue: Enqueue, url: str | None) -> None:
    """Send the job; if the queue cannot take it, the job fails with ``queue_unavailable``
    rather than waiting for ever for a message that was never sent."""
    try:
        enqueue(job_id, device)
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)

        error = {
            "type": "queue_unavailable",
            "message": f"the job could not be handed to a worker queue ({type(exc).__name__}); "
            "submit it again",
        }
        with session_scope(url) as session:
            move(session, job_id, JobStatus.failed, error=error, finished_at=utcnow())
