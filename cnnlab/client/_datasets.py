"""A dataset upload's body: an archive file as it is, or a folder zipped while it is sent.

A folder is never zipped to disk first: :func:`zip_stream` writes the zip into a buffer that the
request drains a piece at a time (zipfile writes to an unseekable stream with data descriptors),
so uploading a folder of any size holds one file's bytes at a time.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

CHUNK_BYTES = 2**20
# Content types by archive suffix; a folder is sent as a zip.
ARCHIVE_TYPES = {
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".tgz": "application/gzip",
    ".gz": "application/gzip",
}

Progress = Callable[[int, int | None], None]  # (bytes sent, total bytes or None)


def content_type(path: Path) -> str:
    """The upload's Content-Type: a folder is zipped; an archive by its suffix."""
    if path.is_dir():
        return "application/zip"
    kind = ARCHIVE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: upload a folder, or a .zip, .tar, .tar.gz or .tgz archive")
    return kind


class _Pipe:
    """The write end zipfile sees; the request reads what was written with :meth:`drain`."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
    return found


def zip_stream(folder: Path) -> Iterator[bytes]:
    """The folder as a zip (paths relative to it, images stored as they are: they are
    compressed already), produced as it is read."""
    pipe = _Pipe()
    with zipfile.ZipFile(cast(IO[bytes], pipe), "w", compression=zipfile.ZIP_STORED) as archive:
        for path in _files(folder):
            info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
            with open(path, "rb") as src, archive.open(info, "w") as dst:
                while data := src.read(CHUNK_BYTES):
                    dst.write(data)
                    if chunk := pipe.drain():
                        yield chunk
    if chunk := pipe.drain():
        yield chunk


def file_stream(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(CHUNK_BYTES):
            yield data


def upload_body(path: Path, progress: Progress | None = None) -> Iterator[bytes]:
    """The request body for ``path`` (folder or archive), reporting bytes sent as it goes."""
    total = None if path.is_dir() else path.stat().st_size
    sent = 0
    for chunk in zip_stream(path) if path.is_dir() else file_stream(path):
        sent += len(chunk)
        yield chunk
        if progress is not None:
            progress(sent, total)
