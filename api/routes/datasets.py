"""A user's own datasets: upload an archive, read its versions, their samples and progress,
delete them. ``GET /v1/datasets`` (built-ins and uploads together) is in :mod:`api.routes.catalog`.

An upload streams the request body to a temporary file (:mod:`api.upload_files`) while hashing
it, a chunk at a time, the file writes in a thread, so the event loop keeps answering other
requests; it is bounded by ``CNNLAB_DATASET_MAX_BYTES`` (413, checked against Content-Length
first when there is one) and the file is removed whatever happens, a client that goes away
included. Decoding runs on a worker.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api import upload_files
from api.dataset_schemas import DatasetVersionRead, DatasetVersions
from api.deps import DbDep, SettingsDep, UserDep
from api.errors import PayloadTooLarge, UnsupportedMediaType
from api.routes.events import Step, StreamDep, _frame
from api.schemas import ErrorResponse
from cnnlab.lifecycle import datasets as lifecycle
from cnnlab.settings import Settings
from cnnlab.status import DatasetStatus
from cnnlab.store import datasets as store
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import DatasetVersion
from worker.queue import enqueue_ingest

ARCHIVE_TYPES = ("application/zip", "application/x-tar", "application/gzip")
# Exempt from the JSON body limit (api.main): the upload has its own.
# Bytes gathered from the request before one write (and hash update) in a thread.
WRITE_BYTES = 2**20
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="the version number")]
_BINARY = {"type": "string", "format": "binary"}

router = APIRouter(
    prefix="/datasets",
    tags=["datasets"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"dataset archive over {limit} bytes (CNNLAB_DATASET_MAX_BYTES)",
        limit=limit,
        limit_name="dataset",
    )


def _read(session: Session, row: DatasetVersion, name: str | None = None) -> DatasetVersionRead:
    data = {c: getattr(row, c) for c in DatasetVersionRead.model_fields if c != "name"}
    return DatasetVersionRead(name=name or store.name_of(session, row), **data)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DatasetVersionRead,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": _BINARY} for t in ARCHIVE_TYPES},
        }
    },
    responses={
        413: {"model": ErrorResponse, "description": "archive over CNNLAB_DATASET_MAX_BYTES"},
        415: {"model": ErrorResponse, "description": "not a zip, tar or gzip body"},
        422: {"model": ErrorResponse},
    },
)
async def upload_dataset(
    request: Request,
    db: DbDep,
    user: UserDep,
    settings: SettingsDep,
    name: Annotated[str, Query(description="the dataset's name; each upload is a new version")],
    image_size: Annotated[
        int | None, Query(ge=16, le=224, description="default: median shorter side, ≤ 64")
    ] = None,
    resize: Literal["squash", "center_crop", "pad"] = "center_crop",
    test_size: Annotated[float, Query(gt=0, lt=1, description="held out when no test/")] = 0.15,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DatasetVersionRead:
    """Upload an archive of labelled images (a folder per class; `train/` and `test/` each with
    class folders; or `labels.csv`) as the raw request body. A worker decodes it: the version
    answered is `ingesting`, then `ready` or `failed` (`GET …/versions/{v}`, `…/events`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ARCHIVE_TYPES:
        raise UnsupportedMediaType(
            f"send the archive as the body, with Content-Type one of {list(ARCHIVE_TYPES)}",
            content_type=content_type or None,
        )
    store.check_name(name)
    options = {"image_size": image_size, "resize": resize, "test_size": test_size, "seed": seed}
    # Removed at the end, also when the client went away mid-body: nothing is left behind.
    async with upload_files.receiving(settings) as (out, path):
        checksum, _ = await upload_files.receive(
            request, out, settings.dataset_max_bytes, _too_large
        )
        name, row = await db.run(_create, user.id, name, path, checksum, options, settings)
    return row


def _create(
    session: Session,
    owner_id: int,
    name: str,
    path: pathlib.Path,
    checksum: str,
    options: dict[str, Any],
    settings: Settings,
) -> tuple[str, DatasetVersionRead]:
    name, row = lifecycle.create_version(
        session, owner_id, name, path, checksum, options, settings, enqueue=enqueue_ingest
    )
    return name, _read(session, row, name)


def _versions(session: Session, owner_id: int, name: str) -> DatasetVersions:
    rows = store.get_dataset(session, owner_id, name)
    return DatasetVersions(name=name, versions=[_read(session, r, name) for r in rows])


@router.get("/{name}", response_model=DatasetVersions)
async def get_dataset(name: str, db: DbDep, user: UserDep) -> DatasetVersions:
    """The dataset's versions, newest first."""
    return await db.read(_versions, user.id, name)


def _version(session: Session, owner_id: int, name: str, version: int) -> DatasetVersionRead:
    return _read(session, store.get_version(session, owner_id, name, version), name)


@router.get("/{name}/versions/{version}", response_model=DatasetVersionRead)
async def get_version(name: str, version: Version, db: DbDep, user: UserDep) -> DatasetVersionRead:
    """The whole record: classes, counts, size, channels, mean/std, checksum, report."""
    return await db.read(_version, user.id, name, version)


def _samples(session: Session, owner_id: int, name: str, version: int) -> bytes:
    row = store.get_version(session, owner_id, name, version)
    if row.samples_checksum is None:
        raise NotFound("samples of dataset version", f"{name}@{version}")
    return b"".join(store.blob_chunks(session, row.samples_checksum))


@router.get(
    "/{name}/versions/{version}/samples.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def samples_png(name: str, version: Version, db: DbDep, user: UserDep) -> Response:
    """A few training images per class, a row each, with the class names (404 until ready)."""
    png = await db.read(_samples, user.id, name, version)
    return Response(content=png, media_type="image/png")


@dataclass(frozen=True)
class VersionPosition:
    """What an event stream's client has: the version's status and progress as of the last
    event sent (``status`` None: none sent). The event's id says it, so it names the same state
    for every stream and process, and a client that reconnects with ``Last-Event-ID`` is sent
    the version only if it has changed since."""

    status: str | None = None
    progress: tuple[int, int] | None = None  # done, total

    @property
    def id(self) -> str:
        """``ingesting:40/120`` (done/total), ``ingesting`` (no progress yet), ``ready``, …"""
        if self.progress is None:
            return self.status or ""
        return f"{self.status}:{self.progress[0]}/{self.progress[1]}"

    @classmethod
    def parse(cls, last_event_id: str | None) -> VersionPosition:
        status, _, progress = (last_event_id or "").strip().partition(":")
        done, _, total = progress.partition("/")
        if status not in DatasetStatus.__members__ or (
            progress and not (done.isdigit() and total.isdigit())
        ):
            return cls()  # not one of ours: start from the beginning
        return cls(status, (int(done), int(total)) if progress else None)

    @classmethod
    def of(cls, version: DatasetVersionRead) -> VersionPosition:
        p = version.progress
        progress = (int(p["done"]), int(p["total"])) if p else None
        return cls(str(version.status), progress)


@router.get(
    "/{name}/versions/{version}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def version_events(name: str, version: Version, stream: StreamDep) -> StreamingResponse:
    """Ingest progress as server-sent events: a `status` event (the version, as
    `GET …/versions/{v}` answers) whenever its status or progress changes; the stream ends
    after the event of a `ready` or `failed` version. An event's id names the status and
    progress it carries: reconnect with `Last-Event-ID` to be sent the version only once it has
    changed since. Counted with the user's other streams."""
    db, owner_id = stream.db, stream.user.id
    await db.read(_version, owner_id, name, version)  # 404 now, not inside the stream

    async def advance(seen: VersionPosition) -> Step[VersionPosition]:
        current = await db.read(_version, owner_id, name, version)
        now = VersionPosition.of(current)
        frames = []
        if now != seen:
            frames.append(_frame("status", current.model_dump(mode="json"), now))
        return frames, now, current.status is not DatasetStatus.ingesting

    return stream.respond(advance, VersionPosition.parse(stream.last_event_id))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"model": ErrorResponse, "description": "dataset_in_use"}},
)
async def delete_dataset(name: str, db: DbDep, user: UserDep) -> Response:
    """Delete every version (409 `dataset_in_use` while a queued or running job or a live
    search trains on one). Registered models trained on it keep predicting."""
    await db.run(lifecycle.delete_dataset, user.id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"model": ErrorResponse, "description": "dataset_in_use"}},
)
async def delete_version(name: str, version: Version, db: DbDep, user: UserDep) -> Response:
    """Delete one version; its number is not given again."""
    await db.run(lifecycle.delete_version, user.id, name, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
