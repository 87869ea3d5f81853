"""The one archive reader in its batch mode (``per_file="list"``): a file's own problem is told
on its entry and the others are read; a hostile or damaged archive is refused as a whole, with
the batch's error types."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from cnnlab.datasets.archives import (
    Archive,
    BadArchive,
    Limits,
    TooManyFiles,
    batch_archive,
    batch_errors,
)
from cnnlab.errors import InvalidDataset

LIMITS = Limits(100, 10**6, 200.0, max_file_bytes=50)


def _zip(tmp_path: Path, members: dict[str, bytes], name: str = "a.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def _tar(tmp_path: Path, members: dict[str, bytes], gz: bool = False) -> Path:
    path = tmp_path / ("a.tar.gz" if gz else "a.tar")
    with tarfile.open(path, "w:gz" if gz else "w") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


MEMBERS = {"a/1.png": b"one", "a/big.png": b"x" * 51, "a/2.png": b"two"}


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_a_file_over_the_limit_is_listed_and_the_others_read(tmp_path: Path, kind: str) -> None:
    if kind == "zip":
        path = _zip(tmp_path, MEMBERS)
    else:
        path = _tar(tmp_path, MEMBERS, gz=kind == "tar.gz")
    archive = Archive(path, LIMITS, per_file="list")
    got = [(i, e.path, data, e.problem) for i, e, data in archive.members()]
    assert got == [
        (0, "a/1.png", b"one", None),
        (1, "a/big.png", None, "over 50 bytes"),
        (2, "a/2.png", b"two", None),
    ]
    assert [(i, data) for i, _, data in archive.members(start=2)] == [(2, b"two")]
    with pytest.raises(InvalidDataset, match="over 50 bytes"):
        Archive(path, LIMITS)  # an upload refuses it


def test_a_second_file_of_one_name_is_listed(tmp_path: Path) -> None:
    path = _tar(tmp_path, {"1.png": b"a", "./1.png": b"b"})
    problems = [e.problem for e in Archive(path, LIMITS, per_file="list").entries]
    assert problems == [None, "a second file of this name"]


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ({"../up.png": b"x"}, "climbs out"),
        ({"/etc/passwd": b"x"}, "absolute path"),
        ({"bomb.png": b"\0" * (3 << 20)}, "compression bomb"),
    ],
)
def test_a_hostile_archive_refuses_the_batch(
    tmp_path: Path, members: dict[str, bytes], words: str
) -> None:
    path = tmp_path / "h.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    with pytest.raises(BadArchive, match=words) as caught:
        batch_archive(path, 100)
    assert caught.value.code == "invalid_archive" and caught.value.status_code == 422


def test_a_link_in_a_tar_refuses_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "l.tar"
    with tarfile.open(path, "w") as tf:
        link = tarfile.TarInfo("images/x.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(BadArchive, match="symbolic link"):
        batch_archive(path, 100)


def test_a_truncated_archive_refuses_the_batch_while_read(tmp_path: Path) -> None:
    whole = _tar(tmp_path, {f"{i}.png": bytes(600) for i in range(4)}, gz=True)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:-40])
    with pytest.raises(BadArchive, match="damaged or truncated"):
        archive = batch_archive(cut, 100)
        with batch_errors():
            list(archive.members())


def test_too_many_files_is_413_and_not_an_archive_422(tmp_path: Path) -> None:
    path = _zip(tmp_path, {f"{i}.png": b"x" for i in range(5)})
    with pytest.raises(TooManyFiles) as caught:
        batch_archive(path, 4)
    assert caught.value.status_code == 413
    other = tmp_path / "hello.txt"
    other.write_bytes(b"hello, not an archive")
    with pytest.raises(BadArchive, match="not a zip"):
        batch_archive(other, 4)


def test_the_upload_caps_a_deployment_lowers_refuse_a_batch_the_defaults_take(
    tmp_path: Path,
) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/zeros.png", bytes(2 * 2**20))  # about 1:1000, past the ratio's slack
    assert [e.path for e in batch_archive(path, 100, max_ratio=5000.0).entries] == ["a/zeros.png"]
    with pytest.raises(BadArchive):
        batch_archive(path, 100, max_ratio=50.0)
    with pytest.raises(BadArchive):
        batch_archive(path, 100, max_uncompressed_bytes=2**20, max_ratio=5000.0)
