"""Where an upload's body lands while it streams in: a temporary file under
``$CNNLAB_HOME/uploads``, locked (``flock``) by the upload writing it for as long as it is used.

The upload removes its file whatever happens to the request, but a killed API process removes
nothing. :func:`sweep_stale` removes what such a process left: files no live upload holds (the
kernel drops a dead process's locks, so taking the lock proves its owner gone, in this process or
any other, pid reuse included) and unwritten for ``CNNLAB_DATASET_UPLOAD_STALE_SECONDS``. The API
sweeps at start and every :data:`SWEEP_EVERY_S` seconds (:func:`sweep_periodically`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from api.errors import InvalidRequest, PayloadTooLarge
from cnnlab.settings import Settings

logger = logging.getLogger(__name__)

SUFFIX = ".upload"
SWEEP_EVERY_S = 300.0
WRITE_BYTES = 2**20  # what the body gathers between two writes to the file


def upload_dir(settings: Settings) -> Path:
    path = settings.home / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _create(settings: Settings) -> tuple[IO[bytes], Path]:
    fd, name = tempfile.mkstemp(dir=upload_dir(settings), suffix=SUFFIX)
    # Before any byte is written; a sweep leaves a file this young alone anyway.
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return os.fdopen(fd, "wb"), Path(name)


def _remove(out: IO[bytes], path: Path) -> None:
    path.unlink(missing_ok=True)
    out.close()  # releases the lock, once the file is gone


@contextlib.asynccontextmanager
async def receiving(settings: Settings) -> AsyncIterator[tuple[IO[bytes], Path]]:
    """A new temporary file, open for writing and locked until the block ends; then removed
    (a client that went away, an error and a success alike). Its path may be read meanwhile."""
    out, path = await run_in_threadpool(_create, settings)
    try:
        yield out, path
    finally:
        await run_in_threadpool(_remove, out, path)


def _write(out: IO[bytes], digest: Any, data: bytes) -> None:
    digest.update(data)
    out.write(data)


async def receive(
    request: Request, out: IO[bytes], limit: int, too_large: Callable[[int], PayloadTooLarge]
) -> tuple[str, int]:
    """Copy the request body into ``out`` within ``limit`` bytes: its sha256 and size. A larger
    declared Content-Length is ``too_large(limit)`` before a byte is read, a body that grows past
    it as soon as it does; a client gone mid-body is an InvalidRequest (nobody reads that answer;
    it only keeps a gone client out of the error logs)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    digest = hashlib.sha256()
    size, pending = 0, bytearray()
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            pending += chunk
            if len(pending) >= WRITE_BYTES:
                await run_in_threadpool(_write, out, digest, bytes(pending))
                pending.clear()
    except ClientDisconnect:
        raise InvalidRequest("body", "the client went away before the body ended") from None
    await run_in_threadpool(_write, out, digest, bytes(pending))
    await run_in_threadpool(out.flush)
    return digest.hexdigest(), size


def sweep_stale(settings: Settings, now: float | None = None) -> list[Path]:
    """Remove the upload files no live upload holds and unwritten for the stale period; the
    files removed."""
    folder = settings.home / "uploads"
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - settings.dataset_upload_stale_seconds
    removed = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            if path.stat().st_mtime > cutoff:
                continue
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its upload ended meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live upload holds it (a slow client)
        else:
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    if removed:
        logger.warning("removed %d upload files left by a stopped API process", len(removed))
    return removed


async def sweep(settings: Settings) -> None:
    """:func:`sweep_stale` in a thread; a failure is logged, not raised."""
    try:
        await run_in_threadpool(sweep_stale, settings)
    except OSError:
        logger.warning("could not sweep the upload folder", exc_info=True)


async def sweep_periodically(settings: Settings, every_s: float = SWEEP_EVERY_S) -> None:
    """:func:`sweep` every ``every_s`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        await sweep(settings)
