"""Reading an uploaded archive (zip, tar, gzip'd tar: told apart by content) member by member,
as bytes in memory: nothing is extracted, so nothing can be written anywhere.

Hostile archives are refused with :class:`InvalidDataset` before or while they are read: paths
that climb out (``../``, absolute), links and device entries, too many entries, too many bytes
(declared, and counted while reading: headers are never trusted), too high a compression ratio
(zip bombs), and damaged or truncated files.

Problems of one file rather than of the archive (over the per-file byte limit, encrypted, a
second file of one name) refuse the archive too, or, with ``per_file="list"`` (a batch
prediction: every file gets a row), are told on the entry (:attr:`Entry.problem`) and the file
is not read.
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

from cnnlab.errors import CnnlabError, InvalidDataset

Kind = Literal["zip", "tar", "tar.gz"]

# Compression ratios are only judged past this many bytes: a small, flat image (or a tar's
# zero-padded headers) compresses far better than any photograph, and is harmless.
RATIO_SLACK_BYTES = 1 << 20
_CHUNK = 1 << 20


PerFile = Literal["refuse", "list"]

# A batch prediction's archive: an upload's caps on the whole (its bytes uncompressed and
# compression ratio: the settings' dataset_max_uncompressed_bytes and dataset_max_ratio, whose
# defaults these are), and on one file's bytes (a file over it gets its row, with why).
BATCH_MAX_UNCOMPRESSED_BYTES = 8 * 2**30
BATCH_MAX_RATIO = 200.0
BATCH_MAX_FILE_BYTES = 64 * 2**20


class BadArchive(CnnlabError):
    """A batch prediction's archive is hostile, damaged or not an archive."""

    code = "invalid_archive"
    status_code = 422


class TooManyFiles(CnnlabError):
    code = "payload_too_large"
    status_code = 413


class TooManyEntries(InvalidDataset):
    """More entries than :attr:`Limits.max_files` (told apart: a batch answers it 413)."""


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_uncompressed_bytes: int
    max_ratio: float
    max_file_bytes: int | None = None  # one file's bytes (None: only the archive's total)


@dataclass(frozen=True)
class Entry:
    """A regular file in the archive: its path (``/``-separated, relative, NFC-normalised) and
    its declared size."""

    path: str
    size: int
    problem: str | None = None  # per_file="list": why the file is not read


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

    def __init__(self, path: Path, limits: Limits, per_file: PerFile = "refuse") -> None:
        self.path, self.limits, self.per_file = path, limits, per_file
        self.kind = detect(path)
        self.size = path.stat().st_size
        self._read_bytes = 0  # counted as files are read
        with _damage_as_invalid():
            self.entries = self._zip_entries() if self.kind == "zip" else self._tar_entries()

    def _file_problem(self, name: str, size: int, encrypted: bool = False) -> str | None:
        """Why one file is not read (per_file="list"), or None; per_file="refuse": raised."""
        problem = None
        if encrypted:
            problem = "encrypted"
        elif self.limits.max_file_bytes is not None and size > self.limits.max_file_bytes:
            problem = f"over {self.limits.max_file_bytes:,} bytes"
        if problem and self.per_file == "refuse":
            raise InvalidDataset(f"archive entry {name!r} is {problem}", entry=name)
        return problem

    # --- listing -------------------------------------------------------------------------------

    def _count(self, n: int) -> None:
        if n > self.limits.max_files:
            raise TooManyEntries(
                f"the archive holds more than {self.limits.max_files:,} entries",
                limit=self.limits.max_files,
            )

    def _zip_entries(self) -> list[Entry]:
        entries: list[Entry] = []
        seen: set[str] = set()
        declared = 0
        self._count(_zip_declared_entries(self.path))
        with zipfile.ZipFile(self.path) as zf:
            infos = zf.infolist()
            self._count(len(infos))
            for info, name, path in _zip_files(infos):
                problem = self._file_problem(name, info.file_size, bool(info.flag_bits & 0x1))
                if _too_compressed(info.file_size, info.compress_size, self.limits):
                    raise InvalidDataset(
                        f"archive entry {name!r} expands {info.compress_size:,} bytes to "
                        f"{info.file_size:,}: a compression bomb",
                        entry=name,
                    )
                if problem is None:
                    declared += info.file_size
                problem = problem or self._unique(path, seen)
                entries.append(Entry(path, info.file_size, problem))
        self._check_declared(declared)
        return entries

    def _unique(self, path: str, seen: set[str]) -> str | None:
        # Two members of one name: which one a reader gets depends on the reader.
        if path in seen:
            if self.per_file == "list":
                return "a second file of this name"
            raise InvalidDataset(f"archive entry {path!r} appears twice", entry=path)
        seen.add(path)
        return None

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
                    problem = self._file_problem(member.name, member.size)
                    if problem is None:
                        declared += member.size
                        self._check_declared(declared)
                    problem = problem or self._unique(path, seen)
                    entries.append(Entry(path, member.size, problem))
        return entries

    # --- reading -------------------------------------------------------------------------------

    def read(self, wanted: set[str]) -> Generator[tuple[Entry, bytes], None, None]:
        """The bytes of each entry whose path is in ``wanted``, in archive order."""
        self._read_bytes = 0
        with _damage_as_invalid():
            if self.kind == "zip":
                yield from self._read_zip(wanted)
            else:
                yield from self._read_tar(wanted)

    def members(self, start: int = 0) -> Generator[tuple[int, Entry, bytes | None], None, None]:
        """Every entry from index ``start`` on (its place in :attr:`entries`), with its bytes, or
        None for an entry with a ``problem``, in archive order (a zip's earlier entries are not
        read; a tar's are passed over)."""
        self._read_bytes = 0
        with _damage_as_invalid():
            if self.kind == "zip":
                yield from self._zip_members(start)
            else:
                yield from self._tar_members(start)

    def _zip_members(self, start: int) -> Iterator[tuple[int, Entry, bytes | None]]:
        with zipfile.ZipFile(self.path) as zf:
            files = enumerate(_zip_files(zf.infolist()))
            for index, (info, _, _) in files:
                if index < start:
                    continue
                entry = self.entries[index]
                data = None if entry.problem else self._zip_data(zf, info)
                yield index, entry, data

    def _read_zip(self, wanted: set[str]) -> Iterator[tuple[Entry, bytes]]:
        with zipfile.ZipFile(self.path) as zf:
            for info, _, path in _zip_files(zf.infolist()):
                if path in wanted:
                    yield Entry(path, info.file_size), self._zip_data(zf, info)

    def _zip_data(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        # zipfile stops at the declared size and checks the CRC at the end: a member that lies
        # about its size fails here rather than growing without bound.
        with zf.open(info) as member:
            data = member.read(info.file_size + 1)
        self._read_bytes += len(data)
        if len(data) > info.file_size or self._read_bytes > self.limits.max_uncompressed_bytes:
            raise InvalidDataset(f"archive entry {info.filename!r} is larger than declared")
        return data

    def _tar_members(self, start: int) -> Iterator[tuple[int, Entry, bytes | None]]:
        index = 0
        with self._open_tar() as tf:
            for member in tf:
                if not (member.isfile() and clean_path(member.name)):
                    continue
                entry = self.entries[index]
                if index >= start:
                    yield index, entry, None if entry.problem else _tar_data(tf, member)
                index += 1

    def _read_tar(self, wanted: set[str]) -> Iterator[tuple[Entry, bytes]]:
        with self._open_tar() as tf:
            for member in tf:
                if not member.isfile():
                    continue
                path = clean_path(member.name)
                if path in wanted:
                    yield Entry(path, member.size), _tar_data(tf, member)


def _zip_files(
    infos: list[zipfile.ZipInfo],
) -> Iterator[tuple[zipfile.ZipInfo, str, str]]:
    """A zip's files (not its folders), each with its name and its clean path; links and paths
    that climb out refuse the archive."""
    for info in infos:
        name = _zip_name(info)
        path = clean_path(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidDataset(f"archive entry {name!r} is a symbolic link", entry=name)
        if not info.is_dir() and path:
            yield info, name, path


def _tar_data(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tf.extractfile(member)
    data = f.read() if f is not None else b""
    if len(data) != member.size:
        raise InvalidDataset(f"archive entry {member.name!r} is truncated")
    return data


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


def batch_archive(
    path: Path,
    max_files: int,
    max_uncompressed_bytes: int = BATCH_MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = BATCH_MAX_RATIO,
) -> Archive:
    """A batch prediction's archive, listed (see :func:`batch_errors` for its errors); per-file
    problems are told on the entries."""
    limits = Limits(max_files, max_uncompressed_bytes, max_ratio, BATCH_MAX_FILE_BYTES)
    with batch_errors():
        return Archive(path, limits, per_file="list")


@contextmanager
def batch_errors() -> Iterator[None]:
    """An archive's refusal as a batch prediction answers it: 413 ``payload_too_large`` for too
    many files, 422 ``invalid_archive`` for the rest."""
    try:
        yield
    except TooManyEntries as exc:
        raise TooManyFiles(exc.message, **exc.details) from exc
    except InvalidDataset as exc:
        raise BadArchive(exc.message, **exc.details) from exc
