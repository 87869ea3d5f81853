"""Reading a batch prediction's result rows (written by :mod:`cnnlab.lifecycle.batches`)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cnnlab.store.tables import BatchPredictionRow

PAGE = 2000


def row_counts(session: Session, job_id: str) -> tuple[int, int]:
    """Rows written, and how many of them are inputs that could not be read."""
    total, failed = session.execute(
        select(func.count(), func.count(BatchPredictionRow.error)).where(
            BatchPredictionRow.job_id == job_id
        )
    ).one()
    return int(total), int(failed)


def iter_rows(session: Session, job_id: str) -> Iterator[BatchPredictionRow]:
    """The rows in input order, read a page at a time."""
    after = -1
    while True:
        page = list(
            session.scalars(
                select(BatchPredictionRow)
                .where(BatchPredictionRow.job_id == job_id, BatchPredictionRow.index > after)
                .order_by(BatchPredictionRow.index)
                .limit(PAGE)
            )
        )
        if not page:
            return
        yield from page
        after = page[-1].index
