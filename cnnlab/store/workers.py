"""Worker heartbeats: which workers are live, what they serve and on which devices.

Each worker's main process calls :func:`beat` every ``worker_heartbeat_seconds`` and
:func:`remove` when it stops cleanly; a worker killed outright leaves its row, which stops
counting as live once its ``last_seen`` is older than the live window and is deleted by the
other workers' beats an hour later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cnnlab.store.tables import Worker, utcnow

# The queue ``device: cuda`` jobs go to (worker.app.GPU_QUEUE; the core cannot import it).
GPU_QUEUE = "gpu"
# Rows of workers not seen for this long are deleted (they died without removing their row).
FORGET_AFTER = timedelta(hours=1)


def beat(
    session: Session,
    worker_id: str,
    *,
    queues: Sequence[str],
    devices: Sequence[str],
    version: str,
    now: datetime | None = None,
) -> None:
    """Record that ``worker_id`` is alive now (adding its row on its first beat), and forget
    workers long dead."""
    now = now or utcnow()
    row = session.get(Worker, worker_id)
    if row is None:
        session.add(
            Worker(
                id=worker_id,
                queues=list(queues),
                devices=list(devices),
                version=version,
                started_at=now,
                last_seen=now,
            )
        )
    else:
        row.queues, row.devices, row.version = list(queues), list(devices), version
        row.last_seen = now
    session.execute(delete(Worker).where(Worker.last_seen < now - FORGET_AFTER))


def remove(session: Session, worker_id: str) -> None:
    """The worker stopped: it is no longer listed."""
    session.execute(delete(Worker).where(Worker.id == worker_id))


def live_workers(
    session: Session, within_seconds: float, now: datetime | None = None
) -> list[Worker]:
    """Workers whose last heartbeat is at most ``within_seconds`` old, by id."""
    since = (now or utcnow()) - timedelta(seconds=within_seconds)
    return list(
        session.scalars(select(Worker).where(Worker.last_seen >= since).order_by(Worker.id))
    )


def serves(session: Session, queue: str, within_seconds: float) -> bool:
    """Whether a live worker consumes ``queue``."""
    return any(queue in w.queues for w in live_workers(session, within_seconds))
