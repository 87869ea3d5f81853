"""Reading a posted archive of images (zip or tar, optionally gzip-compressed), one member at a
time. A minimal reader: regular files only, each bounded in size; anything else (links,
devices, folders) is skipped and named. One function, :func:`iter_members`, so a stricter reader
can replace it."""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError

# Bytes of one member read into memory; a larger one is listed as skipped, not read.
MAX_MEMBER_BYTES = 64 * 2**20


class BadArchive(CnnlabError):
    code = "invalid_archive"
    status_code = 422


class TooManyFiles(CnnlabError):
    code = "payload_too_large"
    status_code = 413


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes | None  # None: skipped, ``error`` says why
    error: str | None = None


def iter_members(path: Path, max_files: int | None = None) -> Iterator[Member]:
    """The archive's files in archive order. :class:`BadArchive` if it is neither zip nor tar;
    :class:`TooManyFiles` past ``max_files`` (before that member is read)."""
    count = 0

    def counted() -> None:
        nonlocal count
        count += 1
        if max_files is not None and count > max_files:
            raise TooManyFiles(f"the archive holds more than {max_files} files", limit=max_files)

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                counted()
                if info.file_size > MAX_MEMBER_BYTES:
                    yield Member(info.filename, None, f"over {MAX_MEMBER_BYTES} bytes")
                    continue
                try:
                    yield Member(info.filename, zf.read(info))
                except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                    yield Member(info.filename, None, f"unreadable ({type(exc).__name__})")
        return
    try:
        tf = tarfile.open(path, mode="r:*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise BadArchive(
            "the body is not a zip or tar archive (optionally gzip-compressed)"
        ) from exc
    with tf:
        try:
            for member in tf:
                if member.isdir():
                    continue
                counted()
                if not member.isfile():
                    yield Member(member.name, None, "not a regular file (link or device)")
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    yield Member(member.name, None, f"over {MAX_MEMBER_BYTES} bytes")
                    continue
                f = tf.extractfile(member)
                yield Member(member.name, f.read() if f is not None else b"")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BadArchive(f"the archive is damaged ({type(exc).__name__})") from exc


def count_members(path: Path, max_files: int | None = None) -> int:
    """How many files :func:`iter_members` yields: a zip's directory, or a tar's headers (its
    members are not read). :class:`TooManyFiles` past ``max_files``."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            count = sum(1 for info in zf.infolist() if not info.is_dir())
    else:
        try:
            with tarfile.open(path, mode="r:*") as tf:
                count = sum(1 for member in tf if not member.isdir())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BadArchive(
                "the body is not a zip or tar archive (optionally gzip-compressed), or it is "
                f"damaged ({type(exc).__name__})"
            ) from exc
    if max_files is not None and count > max_files:
        raise TooManyFiles(f"the archive holds more than {max_files} files", limit=max_files)
    return count
