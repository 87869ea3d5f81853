"""How many jobs one user may have queued or running at once (a search's trials count)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cnnlab.store.errors import TooManyActiveJobs
from cnnlab.store.tables import Job, JobStatus, User

# The statuses that count against the limit: a job not ended yet.
ACTIVE = tuple(s for s in JobStatus if not s.ended)


def active_jobs(session: Session, owner_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == owner_id, Job.status.in_(ACTIVE))
    )
    return int(session.scalar(stmt) or 0)


def reserve(session: Session, owner_id: int, count: int, limit: int | None) -> None:
    """Raise :class:`TooManyActiveJobs` unless ``count`` more jobs fit under ``limit`` (None: no
    limit). The caller adds the jobs in the same transaction.

    The user's row is written first: that locks it on PostgreSQL and takes SQLite's write lock,
    so two submissions from one user at once are counted one after the other, never both
    against the same old count.
    """
    if limit is None:
        return
    session.execute(update(User).where(User.id == owner_id).values(name=User.name))
    active = active_jobs(session, owner_id)
    if active + count > limit:
        raise TooManyActiveJobs(active, count, limit)
