"""A job's input bytes (a batch prediction's archive), stored with it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.store.errors import NotFound
from cnnlab.store.tables import JobInput


def add_input(session: Session, job_id: str, data: bytes) -> None:
    session.add(JobInput(job_id=job_id, data=data, size_bytes=len(data)))
    session.flush()


def input_bytes(session: Session, job_id: str) -> bytes:
    data = session.scalar(select(JobInput.data).where(JobInput.job_id == job_id))
    if data is None:
        raise NotFound("job input", job_id)
    return bytes(data)
