"""What a worker writes while it scores: a batch prediction's result rows, chunk by chunk,
under the attempt's fence, so a job taken over (or resumed after a kill) never writes a row
twice and picks up after the last chunk that committed; an evaluation's or comparison's
progress."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from cnnlab.lifecycle.leases import DEFAULT_LEASE_SECONDS, held
from cnnlab.store.tables import BatchPredictionRow, Job, utcnow


def rows_done(session: Session, job_id: str) -> int:
    """How many inputs already have their row: the next index to write."""
    last = session.scalar(
        select(func.max(BatchPredictionRow.index)).where(BatchPredictionRow.job_id == job_id)
    )
    return 0 if last is None else int(last) + 1


def record_batch_rows(
    session: Session,
    job_id: str,
    attempt: int,
    rows: list[dict[str, Any]],
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> bool:
    """Add a chunk of rows (each with its ``index``) and renew the lease, only while this
    attempt holds the job (False: taken over; nothing written)."""
    fenced = session.execute(
        update(Job)
        .where(held(job_id, attempt))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    if not fenced.rowcount:  # type: ignore[attr-defined]
        return False
    # One executemany of plain rows on the table itself: the ORM's bulk insert spends more per
    # row in its bookkeeping than the insert costs.
    session.execute(
        insert(BATCH_ROWS),
        [{**_EMPTY_ROW, **row, "job_id": job_id} for row in rows],
    )
    return True


def record_progress(
    session: Session,
    job_id: str,
    attempt: int,
    done: int,
    total: int,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> bool:
    """Images scored so far of ``total``, and the lease renewed, only while this attempt holds
    the job (False: taken over)."""
    written = session.execute(
        update(Job)
        .where(held(job_id, attempt))
        .values(
            progress={"done": done, "total": total},
            lease_expires_at=utcnow() + timedelta(seconds=lease_seconds),
        )
    )
    return bool(written.rowcount)  # type: ignore[attr-defined]


BATCH_ROWS = cast(Table, BatchPredictionRow.__table__)
_EMPTY_ROW = {"class_name": None, "probability": None, "top_k": None, "error": None}
