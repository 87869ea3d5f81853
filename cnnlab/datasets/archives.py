"""Reading an uploaded archive (zip, tar, gzip'd tar: told apart by content) member by member,
as bytes in memory: nothing is extracted, so nothing can be written anywhere.

Hostile archives are refused with :class:`InvalidDataset` before or while they are read: paths
that climb out (``../``, absolute), links and device entries, too many entries, too many bytes
(declared, and counted while reading: headers are never trusted), too high a compression ratio
(zip bombs), and damaged or truncated files.
"""

from __future__ import annotations

import gzip
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from cnnlab.errors import InvalidDataset

Kind = Literal["zip", "tar", "tar.gz"]

# Compression ratios are only judged past this many bytes: a small, flat image (or a tar's
# zero-padded headers) compresses far better than any photograph, and is harmless.
RATIO_SLACK_BYTES = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_uncompressed_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class Entry:
    """A regular file in the archive: its path (``/``-separated, relative, NFC-normalised) and
    its declared size."""

    path: str
    size: int


def detect(path: Path) -> Kind:
    """Which kind of archive ``path`` holds, from its first bytes (and a zip's end record)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if zipfile.is_zipfile(path):
        return "zip"
    if head[:4] == b"PK\x03\x04":
        raise InvalidDataset("the zip archive is damaged or truncated (no central directory)")
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise InvalidDataset("the upload is not a zip, tar or gzip'd tar archive")


def clean_path(name: str) -> str:
    """A member's name as a relative ``/`` path, or :class:`InvalidDataset` when it is absolute or
    climbs out of the archive's root."""
    raw = name.replace("\\", "/")
    drive = len(raw) > 1 and raw[0].isalpha() and raw[1] == ":" and raw[2:3] in ("", "/")
    if raw.startswith("/") or drive or "\x00" in raw:
        raise InvalidDataset(f"archive entry {name!r} has an absolute path", entry=name)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidDataset(f"archive entry {name!r} climbs out of the archive (..)", entry=name)
    return unicodedata.normalize("NFC", "/".join(parts))


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name: zipfile reads names without the UTF-8 flag as cp437, but most tools
    (macOS, 7-Zip, Python) write UTF-8 without setting it."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _zip_declared_entries(path: Path) -> int:
    """How many entries a zip's end record declares, read before zipfile parses them all: a
    central directory of millions of entries would take gigabytes as ``ZipInfo`` objects."""
    end_record = getattr(zipfile, "_EndRecData", None)  # zipfile's own reader (zip64 included)
    if end_record is None:
        return 0
    with open(path, "rb") as f:
        record = end_record(f)
    return int(record[zipfile._ECD_ENTRIES_TOTAL]) if record else 0  # type: ignore[attr-defined]


def _too_compressed(uncompressed: int, compressed: int, limits: Limits) -> bool:
    return uncompressed > RATIO_SLACK_BYTES and uncompressed > limits.max_ratio * max(compressed, 1)


class _Counter:
    """Counts the bytes read through it: the decompressed size, never trusting a header."""

    def __init__(self, raw: IO[bytes], limits: Limits, archive_size: int) -> None:
        self.raw, self.limits, self.archive_size, self.count = raw, limits, archive_size, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        if self.count > self.limits.max_uncompressed_bytes:
            raise InvalidDataset(
                f"the archive holds more than {self.limits.max_uncompressed_bytes:,} bytes "
                "uncompressed"
            )
        if _too_compressed(self.count, self.archive_size, self.limits):
            raise InvalidDataset(
                f"the archive expands more than {self.limits.max_ratio:g}× "
                f"({self.archive_size:,} bytes to over {self.count:,}): a compression bomb"
            )
        return data


class Archive:
    """An archive's validated entries (:attr:`entries`, read on opening) and their bytes
    (:meth:`read`). Errors in the file itself (damaged, truncated) become
    :class:`InvalidDataset`."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path, self.limits = path, limits
        self.kind = detect(path)
        self.size = path.stat().st_size
        with _damage_as_invalid():
            self.entries = self._zip_entries() if self.kind == "zip" else self._tar_entries()

    # --- listing -------------------------------------------------------------------------------

    def _count(self, n: int) -> None:
        if n > self.limits.max_files:
            raise InvalidDataset(f"the archive holds more than {self.limits.max_files:,} entries")

    def _zip_entries(self) -> list[Entry]:
        entries: list[Entry] = []
        seen: set[str] = set()
        declared = 0
        self._count(_zip_declared_entries(self.path))
        with zipfile.ZipFile(self.path) as zf:
            infos = zf.infolist()
            self._count(len(infos))
            for info in infos:
                name = _zip_name(info)
                path = clean_path(name)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise InvalidDataset(f"archive entry {name!r} is a symbolic link", entry=name)
                if info.is_dir() or not path:
                    continue
                if info.flag_bits & 0x1:
                    raise InvalidDataset(f"archive entry {name!r} is encrypted", entry=name)
                if _too_compressed(info.file_size, info.compress_size, self.limits):
                    raise InvalidDataset(
                        f"archive entry {name!r} expands {info.compress_size:,} bytes to "
                        f"{info.file_size:,}: a compression bomb",
                        entry=name,
                    )
                declared += info.file_size
                self._unique(path, seen)
                entries.append(Entry(path, info.file_size))
        self._check_declared(declared)
        return entries

    @staticmethod
    def _unique(path: str, seen: set[str]) -> None:
        # Two members of one name: which one a reader gets depends on the reader.
        if path in seen:
            raise InvalidDataset(f"archive entry {path!r} appears twice", entry=path)
        seen.add(path)

    def _check_declared(self, declared: int) -> None:
        if declared > self.limits.max_uncompressed_bytes:
            raise InvalidDataset(
                f"the archive declares {declared:,} bytes uncompressed, over the limit of "
                f"{self.limits.max_uncompressed_bytes:,}"
            )
        if _too_compressed(declared, self.size, self.limits):
            raise InvalidDataset(
                f"the archive expands {self.size:,} bytes to {declared:,} "
                f"(over {self.limits.max_ratio:g}×): a compression bomb"
            )

    @contextmanager
    def _open_tar(self) -> Iterator[tarfile.TarFile]:
        """A streaming tar reader over the (decompressed) bytes, counted as they are read."""
        with ExitStack() as stack:
            stream: IO[bytes] = stack.enter_context(open(self.path, "rb"))
            if self.kind == "tar.gz":
                stream = stack.enter_context(gzip.GzipFile(fileobj=stream))  # type: ignore[arg-type]
            counter = _Counter(stream, self.limits, self.size)
            yield stack.enter_context(tarfile.open(fileobj=counter, mode="r|"))  # type: ignore[call-overload]

    def _tar_entries(self) -> list[Entry]:
        entries: list[Entry] = []
        seen: set[str] = set()
        declared = 0
        with self._open_tar() as tf:
            for n, member in enumerate(tf, start=1):
                self._count(n)
                path = clean_path(member.name)
                what = _tar_refusal(member)
                if what:
                    raise InvalidDataset(
                        f"archive entry {member.name!r} is {what}", entry=member.name
                    )
                if member.isfile() and path:
                    declared += member.size
                    self._check_declared(declared)
                    self._unique(path, seen)
                    entries.append(Entry(path, member.size))
        return entries

    # --- reading -------------------------------------------------------------------------------

    def read(self, wanted: set[str]) -> Generator[tuple[Entry, bytes], None, None]:
        """The bytes of each entry whose path is in ``wanted``, in archive order."""
        with _damage_as_invalid():
            if self.kind == "zip":
                yield from self._read_zip(wanted)
            else:
                yield from self._read_tar(wanted)

    def _read_zip(self, wanted: set[str]) -> Iterator[tuple[Entry, bytes]]:
        total = 0
        with zipfile.ZipFile(self.path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                path = clean_path(_zip_name(info))
                if path not in wanted:
                    continue
                # zipfile stops at the declared size and checks the CRC at the end: a member
                # that lies about its size fails here rather than growing without bound.
                with zf.open(info) as member:
                    data = member.read(info.file_size + 1)
                total += len(data)
                if len(data) > info.file_size or total > self.limits.max_uncompressed_bytes:
                    raise InvalidDataset(f"archive entry {info.filename!r} is larger than declared")
                yield Entry(path, info.file_size), data

    def _read_tar(self, wanted: set[str]) -> Iterator[tuple[Entry, bytes]]:
        with self._open_tar() as tf:
            for member in tf:
                if not member.isfile():
                    continue
                path = clean_path(member.name)
                if path not in wanted:
                    continue
                f = tf.extractfile(member)
                data = f.read() if f is not None else b""
                if len(data) != member.size:
                    raise InvalidDataset(f"archive entry {member.name!r} is truncated")
                yield Entry(path, member.size), data


def _tar_refusal(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a named pipe"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or folder"
    return ""


@contextmanager
def _damage_as_invalid() -> Iterator[None]:
    """Turns the errors a damaged or truncated archive raises while read into InvalidDataset."""
    try:
        yield
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise InvalidDataset(f"the archive is damaged or truncated ({exc})") from exc
    except (NotImplementedError, RuntimeError) as exc:  # zipfile: a compression it lacks, …
        raise InvalidDataset(f"the archive uses a feature that cannot be read ({exc})") from exc
