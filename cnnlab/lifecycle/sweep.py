"""Sweeps: work that no live worker holds goes back to the queue, or ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cnnlab.lifecycle.leases import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUED_GRACE_SECONDS,
    end_if_abandoned,
    expired,
)
from cnnlab.lifecycle.transitions import move
from cnnlab.status import JobStatus
from cnnlab.store.tables import Job, utcnow


@dataclass
class Sweep:
    """What one sweep did: jobs to send to the queue again (id, device), and jobs it ended."""

    requeue: list[tuple[str, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


def sweep(
    session: Session,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    queued_grace_seconds: float = DEFAULT_QUEUED_GRACE_SECONDS,
    resend_queued: Callable[[str], bool] = lambda device: True,
) -> Sweep:
    """Find work no live worker holds, and make it run (or end):

    - a running job whose lease expired (its worker died) goes back to ``queued`` to be sent
      again; one out of attempts fails with ``worker_lost``; one asked to stop ends cancelled;
    - a queued job sent longer than ``queued_grace_seconds`` ago and still unclaimed is sent
      again (its message may have been lost with a broker restart) when ``resend_queued(device)``
      says its queue has nothing waiting.

    Every change is a conditional update, so sweepers in several processes never act twice on a
    job, and a duplicate message is harmless (claims are conditional too). The caller commits,
    then sends ``requeue``.
    """
    now = utcnow()
    result = Sweep()
    for job_id in list(session.scalars(select(Job.id).where(expired(now)))):
        if end_if_abandoned(session, job_id, now, max_attempts):
            result.ended.append(job_id)
        elif move(
            session,
            job_id,
            JobStatus.queued,
            where=(expired(now),),
            lease_expires_at=None,
            enqueued_at=now,
        ):
            result.requeue.append((job_id, _device_of(session, job_id)))

    stale = now - timedelta(seconds=queued_grace_seconds)
    sent_at = func.coalesce(Job.enqueued_at, Job.created_at)
    waiting = session.execute(
        select(Job.id, Job.spec).where(Job.status == JobStatus.queued, sent_at < stale)
    ).all()
    devices = {job_id: str(spec.get("device", "auto")) for job_id, spec in waiting}
    resend = {d: resend_queued(d) for d in set(devices.values())}
    for job_id, device in devices.items():
        if not resend[device]:
            continue
        # Not a move: the job stays queued; only when its message was sent changes.
        again = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued, sent_at < stale)
            .values(enqueued_at=now)
        )
        if again.rowcount:  # type: ignore[attr-defined]
            result.requeue.append((job_id, device))
    return result


def _device_of(session: Session, job_id: str) -> str:
    spec: dict[str, Any] = session.scalar(select(Job.spec).where(Job.id == job_id)) or {}
    return str(spec.get("device", "auto"))
