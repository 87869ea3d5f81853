"""Hostile and damaged archives: each is refused with a clear ``invalid_dataset`` that names what
is wrong, and nothing is written anywhere (an archive is read, never extracted)."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.datasets.ingest import IngestOptions, ingest
from cnnlab.errors import InvalidDataset
from cnnlab.settings import Settings
from tests.utils.image_archives import make_tar, make_zip, write_class_folders


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A small valid dataset's folder: three classes of six real PNGs."""
    return write_class_folders(tmp_path / "good", per_class=6)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing appears in the working directory, or where the hostile paths point."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
    assert _files(work) == set()
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-cnnlab").exists()


def _refused(archive: Path, match: str, **options: object) -> InvalidDataset:
    before = _files(archive.parent)
    with pytest.raises(InvalidDataset, match=match) as info:
        ingest(archive, IngestOptions(**options))  # type: ignore[arg-type]
    assert info.value.code == "invalid_dataset" and info.value.status_code == 422
    assert _files(archive.parent) == before
    return info.value


def _png(good: Path) -> bytes:
    return (good / "trouser" / "0000.png").read_bytes()


def _zip_with(good: Path, target: Path, extra: dict[str, bytes]) -> Path:
    make_zip(good, target)
    with zipfile.ZipFile(target, "a") as zf:
        for name, data in extra.items():
            zf.writestr(name, data)
    return target


def _tar_with(good: Path, target: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    make_tar(good, target)
    with tarfile.open(target, "a") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil/x.png", "climbs out"),
        ("trouser/../../evil/x.png", "climbs out"),
        ("/tmp/evil-cnnlab/x.png", "absolute path"),
        ("C:/evil/x.png", "absolute path"),
        ("..\\evil\\x.png", "climbs out"),
    ],
)
def test_paths_that_leave_the_archive_are_refused(
    good: Path, tmp_path: Path, name: str, why: str
) -> None:
    png = _png(good)
    error = _refused(_zip_with(good, tmp_path / "a.zip", {name: png}), why)
    assert error.details["entry"] == name and repr(name) in error.message
    tar = _tar_with(good, tmp_path / "a.tar", (_info(name, size=len(png)), png))
    _refused(tar, why)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    ("kind", "link", "why"),
    [
        (tarfile.SYMTYPE, "/etc/passwd", "a symbolic link"),
        (tarfile.LNKTYPE, "trouser/0000.png", "a hard link"),
        (tarfile.CHRTYPE, "", "a device"),
        (tarfile.BLKTYPE, "", "a device"),
        (tarfile.FIFOTYPE, "", "a named pipe"),
    ],
)
def test_links_and_devices_in_a_tar_are_refused(
    good: Path, tmp_path: Path, kind: bytes, link: str, why: str
) -> None:
    tar = _tar_with(good, tmp_path / "links.tar", (_info("trouser/odd.png", kind, link=link), None))
    error = _refused(tar, f"'trouser/odd.png' is {why}")
    assert error.details["entry"] == "trouser/odd.png"


@pytest.mark.usefixtures("nothing_written")
def test_a_symbolic_link_in_a_zip_is_refused(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "link.zip")
    with zipfile.ZipFile(target, "a") as zf:
        info = zipfile.ZipInfo("trouser/passwd.png")
        info.external_attr = (0o120777 << 16) | 0x20  # what `zip --symlinks` writes
        zf.writestr(info, "/etc/passwd")
    _refused(target, "'trouser/passwd.png' is a symbolic link")


@pytest.mark.usefixtures("nothing_written")
def test_a_zip_bomb_is_refused_by_its_ratio(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "bomb.zip")
    with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("trouser/zeros.png", bytes(50 * 2**20))  # 50 MB in ~50 kB
    _refused(target, "'trouser/zeros.png' expands .* a compression bomb")


@pytest.mark.usefixtures("nothing_written")
def test_a_zip_bomb_of_many_members_is_refused_by_the_whole_ratio(
    good: Path, tmp_path: Path
) -> None:
    # Each member alone is under the ratio slack; together they expand far beyond the cap.
    target = make_zip(good, tmp_path / "many.zip")
    with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"trouser/z{i}.png", bytes(2**20))
    _refused(target, "the archive expands .* a compression bomb")


@pytest.mark.usefixtures("nothing_written")
def test_the_uncompressed_size_is_capped_declared_and_counted(good: Path, tmp_path: Path) -> None:
    zipped = make_zip(good, tmp_path / "big.zip")
    _refused(
        zipped,
        "declares .* bytes uncompressed, over the limit of 1,000",
        max_uncompressed_bytes=1000,
    )
    # A gzip'd tar's members are counted as they are decompressed (headers are not trusted).
    _refused(make_tar(good, tmp_path / "big.tar.gz", gz=True), "1,000", max_uncompressed_bytes=1000)


@pytest.mark.usefixtures("nothing_written")
def test_a_gzip_bomb_is_refused_while_it_is_read(good: Path, tmp_path: Path) -> None:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as tf:
        zeros = bytes(20 * 2**20)
        tf.addfile(_info("trouser/zeros.png", size=len(zeros)), io.BytesIO(zeros))
    target = tmp_path / "bomb.tar.gz"
    target.write_bytes(gzip.compress(inner.getvalue(), compresslevel=9))
    _refused(target, "compression bomb")


@pytest.mark.usefixtures("nothing_written")
def test_more_entries_than_allowed_are_refused(good: Path, tmp_path: Path) -> None:
    _refused(make_zip(good, tmp_path / "n.zip"), "more than 10 entries", max_files=10)
    _refused(make_tar(good, tmp_path / "n.tar"), "more than 10 entries", max_files=10)


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("pack", ["zip", "tar", "tar.gz"])
def test_a_truncated_archive_is_refused(good: Path, tmp_path: Path, pack: str) -> None:
    source = make_zip(good) if pack == "zip" else make_tar(good, gz=pack == "tar.gz")
    cut = tmp_path / f"cut.{pack}"
    data = source.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    _refused(cut, "damaged or truncated")


@pytest.mark.usefixtures("nothing_written")
def test_a_member_that_fails_its_checksum_is_refused(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "crc.zip")
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("trouser/0000.png")
        at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 40
    data = bytearray(target.read_bytes())
    data[at] ^= 0xFF  # one flipped byte inside the member's compressed data
    target.write_bytes(bytes(data))
    _refused(target, "damaged or truncated")


@pytest.mark.usefixtures("nothing_written")
def test_something_that_is_no_archive_is_refused(tmp_path: Path, good: Path) -> None:
    plain = tmp_path / "photo.zip"
    plain.write_bytes(_png(good))
    _refused(plain, "not a zip, tar or gzip'd tar archive")
    gz = tmp_path / "notatar.tar.gz"
    gz.write_bytes(gzip.compress(b"just some text, not a tar"))
    _refused(gz, "damaged or truncated")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels and holds almost none of them."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("side", [30_000, 8_000])
def test_a_picture_declaring_a_huge_size_in_a_few_bytes_is_refused(
    good: Path, tmp_path: Path, side: int
) -> None:
    bomb = _png_header(side, side)
    assert len(bomb) < 60
    target = _zip_with(good, tmp_path / "px.zip", {"trouser/huge.png": bomb})
    error = _refused(
        target, f"trouser/huge.png declares .* in {len(bomb)} bytes: a decompression bomb"
    )
    assert error.details["entry"] == "trouser/huge.png"


@pytest.mark.usefixtures("nothing_written")
def test_an_entry_named_twice_is_refused(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "twice.zip")
    with zipfile.ZipFile(target, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("trouser/0000.png", _png(good))
    _refused(target, "'trouser/0000.png' appears twice")


@pytest.mark.usefixtures("nothing_written")
def test_a_nested_archive_is_skipped_not_expanded(good: Path, tmp_path: Path) -> None:
    inner = make_zip(good, tmp_path / "inner.zip").read_bytes()
    target = _zip_with(good, tmp_path / "outer.zip", {"trouser/more.zip": inner})
    data = ingest(target, IngestOptions())
    assert data.report["skipped"] == [{"file": "trouser/more.zip", "why": "nested archive"}]
    assert len(data.files) == 18  # the inner archive's images are not added


@pytest.mark.usefixtures("nothing_written")
def test_an_encrypted_zip_member_is_refused(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "enc.zip")
    data = bytearray(target.read_bytes())
    with zipfile.ZipFile(target) as zf:
        infos = zf.infolist()
    # Set the "encrypted" flag in the central directory's record of the first member.
    central = data.rfind(b"PK\x01\x02", 0, len(data))
    first = data.find(b"PK\x01\x02")
    assert first <= central
    data[first + 8] |= 0x01
    target.write_bytes(bytes(data))
    _refused(target, f"'{infos[0].filename}' is encrypted")


@pytest.mark.usefixtures("nothing_written")
def test_a_compression_method_zipfile_lacks_is_refused(good: Path, tmp_path: Path) -> None:
    target = make_zip(good, tmp_path / "deflate64.zip")
    data = bytearray(target.read_bytes())
    # The first member says Deflate64 (method 9), in its local header and the central directory.
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 8 : local + 10] = struct.pack("<H", 9)
    data[central + 10 : central + 12] = struct.pack("<H", 9)
    target.write_bytes(bytes(data))
    _refused(target, "uses a feature that cannot be read")


@pytest.mark.usefixtures("nothing_written")
def test_a_zip_declaring_too_many_entries_is_refused_before_they_are_parsed(
    good: Path, tmp_path: Path
) -> None:
    target = make_zip(good, tmp_path / "declared.zip")
    data = bytearray(target.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 60_000, 60_000)  # entries here, and in all
    target.write_bytes(bytes(data))
    _refused(target, "more than 50,000 entries", max_files=50_000)


def test_the_limits_default_to_the_settings_defaults() -> None:
    """A worker passes the CNNLAB_DATASET_MAX_* settings in; unset, they are these defaults."""
    defaults, fields = IngestOptions(), Settings.model_fields
    assert defaults.max_files == fields["dataset_max_files"].default
    assert defaults.max_uncompressed_bytes == fields["dataset_max_uncompressed_bytes"].default
    assert defaults.max_ratio == fields["dataset_max_ratio"].default
    assert defaults.max_image_pixels == fields["dataset_max_image_pixels"].default
