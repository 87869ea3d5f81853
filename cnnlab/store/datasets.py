"""Uploaded datasets' rows: a user's datasets, their versions, and the blobs that hold the bytes.

A version is immutable once ready: the archive it came from (a blob named by its sha256), what
the ingest made of it, and the decoded tensors (another blob). Everything is per owner: someone
else's dataset is :class:`NotFound` exactly like a missing one. Status changes are the
lifecycle's (:mod:`cnnlab.lifecycle.datasets`); this module reads, and writes bytes and names.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import DATASETS
from cnnlab.errors import CnnlabError, SpecError
from cnnlab.settings import Settings
from cnnlab.status import DatasetStatus
from cnnlab.store import counters
from cnnlab.store.db import session_scope
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import (
    DATASET_NAME_PATTERN,
    Blob,
    BlobChunk,
    Dataset,
    DatasetVersion,
    JobInput,
    utcnow,
)

# Bytes per chunk row: well under PostgreSQL's 1 GB bytea limit, and what one read holds.
CHUNK_BYTES = 8 * 2**20

_NAME = re.compile(DATASET_NAME_PATTERN)
_DATASETS = cast(Table, Dataset.__table__)


class InvalidDatasetName(CnnlabError):
    code = "invalid_request"
    status_code = 422

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"name: {name!r} {why}", field="name", pattern=DATASET_NAME_PATTERN)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidDatasetName(name, "is not a dataset name")
    if name in DATASETS:
        raise InvalidDatasetName(name, "is a built-in dataset")
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` → (NAME, None: the newest ready version); ``NAME@3`` → (NAME, 3)."""
    name, at, version = ref.partition("@")
    if not at:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise SpecError("dataset", f"{ref!r}: a version is a number from 1 (NAME@2)")
    return name, int(version)


# -- blobs -------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def has_blob(session: Session, checksum: str) -> bool:
    return session.scalar(select(Blob.checksum).where(Blob.checksum == checksum)) is not None


def put_blob(session: Session, path: Path, checksum: str) -> bool:
    """Store the file's bytes under ``checksum`` (its sha256) unless they are stored already; a
    chunk at a time, in a savepoint, so two writers of the same bytes store them once (the
    loser's insert is undone). True if this call stored them."""
    if has_blob(session, checksum):
        return False
    size = path.stat().st_size
    try:
        with session.begin_nested():
            session.execute(
                insert(Blob).values(
                    checksum=checksum,
                    size=size,
                    chunks=-(-size // CHUNK_BYTES),
                    created_at=utcnow(),
                )
            )
            with open(path, "rb") as f:
                index = 0
                while data := f.read(CHUNK_BYTES):
                    session.execute(
                        insert(BlobChunk).values(checksum=checksum, index=index, data=data)
                    )
                    index += 1
    except IntegrityError:
        return False  # stored by another upload of the same bytes meanwhile
    return True


def blob_chunks(session: Session, checksum: str) -> Iterator[bytes]:
    """The blob's bytes, one chunk per query (so memory holds one chunk at a time)."""
    count = session.scalar(select(Blob.chunks).where(Blob.checksum == checksum))
    if count is None:
        raise NotFound("blob", checksum)
    for index in range(count):
        yield session.scalars(
            select(BlobChunk.data).where(BlobChunk.checksum == checksum, BlobChunk.index == index)
        ).one()


def write_blob(session: Session, checksum: str, out: IO[bytes]) -> int:
    """Copy the blob into ``out``; returns the bytes written."""
    written = 0
    for data in blob_chunks(session, checksum):
        out.write(data)
        written += len(data)
    return written


def delete_unused_blobs(session: Session, checksums: set[str]) -> None:
    """Remove those of ``checksums`` no version refers to any more (as archive or decoded), nor
    a job's input (a batch prediction's archive)."""
    for checksum in checksums:
        used = session.scalar(
            select(func.count()).select_from(JobInput).where(JobInput.checksum == checksum)
        ) or session.scalar(
            select(func.count())
            .select_from(DatasetVersion)
            .where(
                (DatasetVersion.checksum == checksum)
                | (DatasetVersion.decoded_checksum == checksum)
                | (DatasetVersion.samples_checksum == checksum)
            )
        )
        if not used:
            session.execute(delete(BlobChunk).where(BlobChunk.checksum == checksum))
            session.execute(delete(Blob).where(Blob.checksum == checksum))


# -- datasets and versions ---------------------------------------------------------------------


def next_version(session: Session, owner_id: int, name: str) -> tuple[str, int]:
    """Create the dataset if it is new and take its next version number: one atomic increment,
    so two uploads of one name at once get two numbers, and a number is never given twice."""
    return counters.next_version(session, _DATASETS, owner_id, name)


def dataset_row(session: Session, owner_id: int, name: str) -> Dataset:
    row = session.scalar(select(Dataset).where(Dataset.owner_id == owner_id, Dataset.name == name))
    if row is None:
        raise NotFound("dataset", name)
    return row


def list_datasets(session: Session, owner_id: int) -> list[tuple[Dataset, list[DatasetVersion]]]:
    """The owner's datasets by name, each with its versions, newest first. A dataset whose
    versions were all deleted is not listed (its row stays only to keep its numbers)."""
    rows = session.scalars(
        select(Dataset).where(Dataset.owner_id == owner_id).order_by(Dataset.name)
    ).all()
    listed = [(d, versions(session, d.id)) for d in rows]
    return [(d, vs) for d, vs in listed if vs]


def get_dataset(session: Session, owner_id: int, name: str) -> list[DatasetVersion]:
    """The dataset's versions, newest first; :class:`NotFound` if it has none."""
    rows = versions(session, dataset_row(session, owner_id, name).id)
    if not rows:
        raise NotFound("dataset", name)
    return rows


def versions(session: Session, dataset_id: str) -> list[DatasetVersion]:
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.version.desc())
        )
    )


def get_version(session: Session, owner_id: int, name: str, version: int) -> DatasetVersion:
    row = session.scalar(
        select(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(
            Dataset.owner_id == owner_id,
            Dataset.name == name,
            DatasetVersion.version == version,
        )
    )
    if row is None:
        raise NotFound("dataset version", f"{name}@{version}")
    return row


def version_by_id(session: Session, version_id: str) -> DatasetVersion | None:
    return session.get(DatasetVersion, version_id)


def name_of(session: Session, version: DatasetVersion) -> str:
    return str(session.scalar(select(Dataset.name).where(Dataset.id == version.dataset_id)))


@dataclass(frozen=True)
class Resolved:
    """A spec's ``dataset`` resolved against the owner's versions: ``ref`` is ``NAME@V``."""

    ref: str
    version: DatasetVersion


def resolve(session: Session, owner_id: int, ref: str) -> Resolved:
    """``NAME`` (the newest ready version) or ``NAME@V`` (that one, which must be ready) among the
    owner's; anything else is a :class:`SpecError` naming ``dataset``."""
    name, number = parse_ref(ref)
    dataset = session.scalar(
        select(Dataset).where(Dataset.owner_id == owner_id, Dataset.name == name)
    )
    if dataset is None:
        raise SpecError(
            "dataset", f"unknown dataset {ref!r}; choose from {sorted(DATASETS)} or your uploads"
        )
    rows = versions(session, dataset.id)
    if number is None:
        ready = [v for v in rows if v.status is DatasetStatus.ready]
        if not ready:
            raise SpecError("dataset", f"{name!r} has no ready version yet")
        return Resolved(f"{name}@{ready[0].version}", ready[0])
    found = next((v for v in rows if v.version == number), None)
    if found is None:
        raise SpecError("dataset", f"{name!r} has no version {number}")
    if found.status is not DatasetStatus.ready:
        raise SpecError("dataset", f"{ref!r} is {found.status}, not ready")
    return Resolved(ref, found)


def stored_bytes(session: Session, owner_id: int) -> int:
    """Bytes of the owner's uploads (archives and decoded tensors), counted per version."""
    stmt = (
        select(
            func.coalesce(func.sum(DatasetVersion.archive_bytes), 0)
            + func.coalesce(func.sum(DatasetVersion.decoded_bytes), 0)
        )
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.owner_id == owner_id)
    )
    return int(session.scalar(stmt) or 0)


def fetch_decoded(checksum: str, settings: Settings, url: str | None = None) -> Path:
    """A decoded dataset's file in this machine's cache, copied from the store if missing (to a
    temporary name, checked against its sha256, then renamed: never half a file)."""
    from cnnlab.datasets.loading import decoded_path

    path = decoded_path(checksum, settings)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, session_scope(url) as session:
            for data in blob_chunks(session, checksum):
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != checksum:
            raise OSError(f"decoded dataset {checksum} read back with another checksum")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
