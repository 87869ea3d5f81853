"""A job's input bytes (a batch prediction's archive): a blob, named by its sha256, from submit
until the job ends (:func:`drop_input`), and counted in the owner's storage meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cnnlab.store.datasets import blob_chunks, delete_unused_blobs, put_blob
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import Job, JobInput


def add_input(session: Session, job_id: str, path: Path, checksum: str) -> None:
    """The file at ``path`` (its sha256 ``checksum``) as the job's input, a chunk at a time."""
    put_blob(session, path, checksum)
    session.add(JobInput(job_id=job_id, checksum=checksum, size_bytes=path.stat().st_size))
    session.flush()


def write_input(session: Session, job_id: str, out: IO[bytes]) -> int:
    """Copy the job's input into ``out``, a chunk at a time; the bytes written."""
    row = session.scalar(select(JobInput).where(JobInput.job_id == job_id))
    if row is None:
        raise NotFound("job input", job_id)
    if row.checksum is None:  # stored before blobs
        out.write(row.data or b"")
        return len(row.data or b"")
    written = 0
    for data in blob_chunks(session, row.checksum):
        out.write(data)
        written += len(data)
    return written


def drop_input(session: Session, job_id: str) -> None:
    """Remove the job's input (its job ended), and its blob unless something else uses it."""
    checksum = session.scalar(select(JobInput.checksum).where(JobInput.job_id == job_id))
    deleted = session.execute(delete(JobInput).where(JobInput.job_id == job_id))
    if deleted.rowcount and checksum:  # type: ignore[attr-defined]
        delete_unused_blobs(session, {checksum})


def input_bytes_of(session: Session, owner_id: int) -> int:
    """Bytes of the owner's jobs' inputs still stored (their jobs have not ended)."""
    stmt = (
        select(func.coalesce(func.sum(JobInput.size_bytes), 0))
        .join(Job, Job.id == JobInput.job_id)
        .where(Job.owner_id == owner_id)
    )
    return int(session.scalar(stmt) or 0)
