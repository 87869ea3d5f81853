"""Ingesting an uploaded archive of real pictures: every layout, the decoding rules, the size
rule, splits, duplicates and the report, and the decoded cache file."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.datasets import decoders
from cnnlab.datasets.ingest import IngestOptions, ingest, load_ingested, save_ingested
from cnnlab.errors import InvalidDataset
from tests.utils.image_archives import (
    encode,
    make_tar,
    make_zip,
    picture,
    real_images,
    write_class_folders,
    zip_members,
)

CLASSES3 = ["pullover", "t-shirt", "trouser"]  # Fashion-MNIST's classes 2, 0, 1, sorted


def _split_counts(data: object) -> dict[str, list[int]]:
    assert hasattr(data, "report")
    return {name: [c["train"], c["val"], c["test"]] for name, c in data.report["counts"].items()}


@pytest.mark.parametrize("pack", ["zip", "tar", "tar.gz"])
def test_class_folders_become_classes_with_a_stratified_test_part(
    tmp_path: Path, pack: str
) -> None:
    folder = write_class_folders(tmp_path / "clothes", per_class=20, sizes=(28,), fmt="png")
    archive = make_zip(folder) if pack == "zip" else make_tar(folder, gz=pack == "tar.gz")
    seen: list[tuple[int, int]] = []
    data = ingest(archive, IngestOptions(), progress=lambda done, total: seen.append((done, total)))
    assert data.classes == CLASSES3
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape) == (60, 1, 28, 28)
    assert data.labels.dtype == torch.int64 and data.split.dtype == torch.uint8
    assert data.channels == 1 and data.image_size == 28
    # 15 % of each class held out as the test part: 3 of 20.
    assert _split_counts(data) == {name: [17, 0, 3] for name in CLASSES3}
    assert data.report["layout"] == "class_folders" and data.report["skipped"] == []
    assert data.report["imbalance_ratio"] == 1.0
    assert sorted(data.files) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*.png")
    )
    for f, y in zip(data.files, data.labels.tolist(), strict=True):
        assert f.split("/")[0] == data.classes[y]
    assert seen[0] == (0, 60) and seen[-1] == (60, 60)
    # The pixels are the pictures' own (PNG is lossless, and no resize was needed).
    with Image.open(folder / data.files[0]) as im:
        first = np.asarray(im)
    assert np.array_equal(data.images[0, 0].numpy(), first)
    # Mean and std over the training part, in 0..1 units.
    train = data.images[data.split == 0].double() / 255
    assert data.mean == pytest.approx([train.mean().item()], abs=1e-5)
    assert data.std == pytest.approx([train.std(unbiased=False).item()], abs=1e-5)


def test_a_folder_zipped_by_a_file_manager_is_unwrapped(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "My Pictures", per_class=6, fmt="jpeg")
    (folder / "trouser" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / ".hidden").write_text("x")
    archive = make_zip(folder, wrap=True)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/My Pictures/trouser/._0000.jpg", b"\x00\x05\x16\x07")
    data = ingest(archive, IngestOptions())
    assert data.classes == CLASSES3 and len(data.files) == 18
    assert all(f.startswith("My Pictures/") for f in data.files)
    assert data.report["skipped"] == []  # junk from file managers is left out silently


def test_train_val_and_test_folders_give_the_splits(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_class_folders(root / "train", per_class=8, classes=(0, 1), fmt="png")
    write_class_folders(root / "val", per_class=2, classes=(0, 1), fmt="png", offset=8)
    write_class_folders(root / "test", per_class=3, classes=(0, 1), fmt="png", offset=10)
    data = ingest(make_tar(root, gz=True), IngestOptions(test_size=0.5))
    assert data.classes == ["t-shirt", "trouser"]
    # The archive's own test/ is the test part: test_size is not used.
    assert _split_counts(data) == {"t-shirt": [8, 2, 3], "trouser": [8, 2, 3]}
    images, labels = data.part(1)
    assert images.shape[0] == 4 and labels.tolist() == data.labels[data.split == 1].tolist()
    assert data.report["layout"] == "split_folders"
    for f, s in zip(data.files, data.split.tolist(), strict=True):
        assert f.split("/")[0] == ["train", "val", "test"][s]


def test_a_flat_folder_with_labels_csv(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    rows = ["file,label"]
    for i, (c, pixels) in enumerate(real_images(5, [3, 8])):
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
        rows.append(f"img{i:02d}.png,{['dress', 'bag'][c == 8]}")
    (root / "notes.txt").write_text("not listed")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    data = ingest(make_zip(root, wrap=True), IngestOptions())
    assert data.classes == ["bag", "dress"]
    assert data.report["layout"] == "labels_csv"
    assert data.report["skipped"] == [{"file": "flat/notes.txt", "why": "not in labels.csv"}]
    for f, y in zip(data.files, data.labels.tolist(), strict=True):
        assert data.classes[y] == ("dress" if int(f[-6:-4]) < 5 else "bag")


def test_labels_csv_naming_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "flat", per_class=5, classes=(0, 1))
    flat = tmp_path / "f"
    flat.mkdir()
    rows = []
    for i, path in enumerate(sorted(root.rglob("*.png"))):
        shutil.copy(path, flat / f"{i}.png")
        rows.append(f"{i}.png,{path.parent.name}")
    rows.append("ghost.png,trouser")
    (flat / "labels.csv").write_text("\n".join(rows))
    with pytest.raises(InvalidDataset, match=r"ghost\.png") as info:
        ingest(make_zip(flat), IngestOptions())
    assert info.value.code == "invalid_dataset" and info.value.status_code == 422
    assert info.value.details["missing"] == ["ghost.png"]


def test_unicode_class_names_are_kept_and_sorted(tmp_path: Path) -> None:
    names = ["été", "Ärmel", "靴"]
    folder = write_class_folders(tmp_path / "u", per_class=5, names=names)
    for archive in (make_zip(folder), make_tar(folder)):
        assert ingest(archive, IngestOptions()).classes == sorted(names)


def test_the_kind_of_archive_is_read_from_its_content_not_its_name(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "d", per_class=5)
    misnamed = make_tar(folder, tmp_path / "upload.zip", gz=True)
    assert ingest(misnamed, IngestOptions()).classes == CLASSES3
    misnamed = make_zip(folder, tmp_path / "upload.tar.gz")
    assert ingest(misnamed, IngestOptions()).classes == CLASSES3


def test_grey_pictures_give_one_channel_and_a_colour_one_gives_three(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "g", per_class=5, fmt="jpeg")
    assert ingest(make_zip(folder, tmp_path / "g.zip"), IngestOptions()).channels == 1
    # RGB files whose pixels are all grey still count as grey.
    pixels = real_images(1, [0], offset=30)[0][1]
    Image.fromarray(pixels).convert("RGB").save(folder / "t-shirt" / "rgb.png")
    assert ingest(make_zip(folder, tmp_path / "g2.zip"), IngestOptions()).channels == 1
    picture(pixels, 28, colour=True).save(folder / "t-shirt" / "colour.png")
    data = ingest(make_zip(folder, tmp_path / "c.zip"), IngestOptions())
    assert data.channels == 3 and data.images.shape[1] == 3
    grey = data.files.index("t-shirt/rgb.png")
    assert torch.equal(data.images[grey, 0], data.images[grey, 2])
    colour = data.files.index("t-shirt/colour.png")
    assert not torch.equal(data.images[colour, 0], data.images[colour, 2])


def _one_image_dataset(tmp_path: Path, name: str, blob: bytes) -> Path:
    """Class folders of real pictures, plus ``blob`` as ``odd/<name>`` among four more."""
    folder = write_class_folders(tmp_path / "set", per_class=5, classes=(0, 1))
    odd = folder / "odd"
    odd.mkdir()
    for i, (_, pixels) in enumerate(real_images(4, [2])):
        Image.fromarray(pixels).save(odd / f"{i}.png")
    (odd / name).write_bytes(blob)
    return make_zip(folder)


def _row(data: object, file: str) -> torch.Tensor:
    assert hasattr(data, "files") and hasattr(data, "images")
    return data.images[data.files.index(file)]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 40 wide, 20 high: left half black, right half white; EXIF 6 says "turn 90° clockwise".
    pixels = np.zeros((20, 40), dtype=np.uint8)
    pixels[:, 20:] = 255
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6
    archive = _one_image_dataset(tmp_path, "turned.png", encode(im, "png", exif=exif))
    data = ingest(archive, IngestOptions(image_size=16, resize="squash"))
    shown = _row(data, "odd/turned.png")[0].numpy()
    # Turned clockwise, the left (black) half is on top.
    assert shown[:6].max() < 30 and shown[-6:].min() > 225


def test_palette_alpha_and_16_bit_pictures(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "set", per_class=5, classes=(0, 1))
    odd = folder / "odd"
    odd.mkdir()
    rgba = np.zeros((24, 24, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red where opaque
    rgba[:12, :, 3] = 255  # top half opaque, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(odd / "alpha.png")
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(odd / "palette.gif")
    wide = np.full((24, 24), 65535, dtype=np.uint16)
    wide[12:] = 32896  # 128 × 257
    Image.fromarray(wide).save(odd / "deep.png")
    Image.fromarray(rgba, "RGBA").convert("LA").save(odd / "grey-alpha.png")
    Image.fromarray(rgba[..., :3]).convert("CMYK").save(odd / "cmyk.jpg", quality=95)
    data = ingest(make_zip(folder), IngestOptions(image_size=24))
    assert data.channels == 3 and data.report["skipped"] == []
    alpha = _row(data, "odd/alpha.png").numpy()
    assert (alpha[:, :12] == np.array([200, 0, 0])[:, None, None]).all()
    assert (alpha[:, 12:] == 255).all()  # transparent: composited on white
    assert (_row(data, "odd/grey-alpha.png")[:, 12:] == 255).all()
    deep = _row(data, "odd/deep.png").numpy()
    assert (deep[:, :12] == 255).all() and (deep[:, 12:] == 128).all()
    assert _row(data, "odd/palette.gif")[0, :12].float().mean() > 190
    cmyk = _row(data, "odd/cmyk.jpg")[:, :12].float().mean(dim=(1, 2))
    assert cmyk[0] > 150 and cmyk[1] < 60 and cmyk[2] < 60


@pytest.mark.parametrize("resize", ["squash", "center_crop", "pad"])
def test_each_resize_mode_gives_square_images_of_the_size(tmp_path: Path, resize: str) -> None:
    folder = write_class_folders(tmp_path / "s", per_class=5, sizes=((48, 24), (20, 60), (33, 33)))
    data = ingest(make_zip(folder), IngestOptions(image_size=32, resize=resize))  # type: ignore[arg-type]
    assert tuple(data.images.shape) == (15, 1, 32, 32) and data.image_size == 32


def test_the_resize_modes_keep_what_they_promise(tmp_path: Path) -> None:
    # A wide picture: a white square in the middle of a black band twice as wide as high.
    band = np.zeros((20, 40), dtype=np.uint8)
    band[:, 10:30] = 255
    blob = encode(Image.fromarray(band), "png")
    archive = _one_image_dataset(tmp_path, "band.png", blob)

    def shown(resize: str) -> np.ndarray:
        data = ingest(archive, IngestOptions(image_size=20, resize=resize))  # type: ignore[arg-type]
        return _row(data, "odd/band.png")[0].numpy()

    assert (shown("center_crop") == 255).all()  # the central square only
    pad = shown("pad")  # the whole band, letterboxed: black above and below
    assert (pad[:5] == 0).all() and (pad[-5:] == 0).all() and (pad[10, 6:14] == 255).all()
    squash = shown("squash")  # the whole band, stretched: black at the sides, top to bottom
    assert (squash[:, :4] == 0).all() and (squash[:, 6:14] == 255).all()


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ((20, 28, 36), 28),  # the median shorter side
        (((80, 30), (30, 90), (44, 44)), 30),  # shorter sides 30, 30, 44
        ((100, 120, 90), 64),  # capped at 64
        ((10, 12, 8), 16),  # never under 16
    ],
)
def test_the_default_image_size_is_the_median_shorter_side(
    tmp_path: Path, sizes: tuple[int | tuple[int, int], ...], expected: int
) -> None:
    folder = write_class_folders(tmp_path / "d", per_class=5, sizes=sizes)
    data = ingest(make_zip(folder), IngestOptions())
    assert data.image_size == expected and data.images.shape[-2:] == (expected, expected)


def test_duplicates_are_reported_and_removed_from_test(tmp_path: Path) -> None:
    root = tmp_path / "set"
    write_class_folders(root / "train", per_class=6, classes=(0, 1), fmt="png")
    write_class_folders(root / "test", per_class=3, classes=(0, 1), fmt="png", offset=6)
    shutil.copy(root / "train/t-shirt/0000.png", root / "train/t-shirt/copy.png")
    shutil.copy(root / "train/trouser/0001.png", root / "test/trouser/leak.png")
    data = ingest(make_zip(root), IngestOptions())
    report = data.report
    assert sorted(map(sorted, report["duplicates"])) == [
        ["test/trouser/leak.png", "train/trouser/0001.png"],
        ["train/t-shirt/0000.png", "train/t-shirt/copy.png"],
    ]
    assert report["train_test_duplicates"] == [
        {"train": "train/trouser/0001.png", "test": "test/trouser/leak.png"}
    ]
    assert "test/trouser/leak.png" not in data.files
    assert "train/t-shirt/copy.png" in data.files  # within train: reported, kept
    assert _split_counts(data) == {"t-shirt": [7, 0, 3], "trouser": [6, 0, 3]}
    assert report["imbalance_ratio"] == pytest.approx(7 / 6, abs=1e-4)


def test_files_that_are_not_usable_images_are_skipped_with_why(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "set", per_class=5, classes=(0, 1), fmt="png")
    png = (folder / "t-shirt" / "0000.png").read_bytes()
    (folder / "t-shirt" / "readme.txt").write_text("hello")
    (folder / "t-shirt" / "cut.png").write_bytes(png[: len(png) // 2])
    (folder / "t-shirt" / "empty.png").write_bytes(b"")
    (folder / "trouser" / "more.zip").write_bytes(
        make_zip(folder, tmp_path / "inner.zip").read_bytes()
    )
    (folder / "trouser" / "sneaky.png").write_bytes((tmp_path / "inner.zip").read_bytes())
    noisy = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)
    Image.fromarray(noisy).save(folder / "trouser" / "big.png")
    data = ingest(make_zip(folder, tmp_path / "a.zip"), IngestOptions(max_image_pixels=3000))
    assert sorted(data.report["skipped"], key=lambda s: s["file"]) == [
        {"file": "t-shirt/cut.png", "why": "undecodable"},
        {"file": "t-shirt/empty.png", "why": "zero bytes"},
        {"file": "t-shirt/readme.txt", "why": "not an image"},
        {"file": "trouser/big.png", "why": "too large"},
        {"file": "trouser/more.zip", "why": "nested archive"},
        {"file": "trouser/sneaky.png", "why": "nested archive"},
    ]
    assert len(data.files) == 10


def test_too_few_classes_or_images_are_refused_naming_the_classes(tmp_path: Path) -> None:
    one = write_class_folders(tmp_path / "one", per_class=8, classes=(0,))
    with pytest.raises(InvalidDataset, match="at least 2 classes"):
        ingest(make_zip(one), IngestOptions())
    few = write_class_folders(tmp_path / "few", per_class=8, classes=(0, 1, 2))
    for path in sorted((few / "pullover").iterdir())[4:]:
        path.unlink()
    (few / "pullover" / "0000.png").write_bytes(b"not a picture")
    with pytest.raises(InvalidDataset, match=r"too few in 'pullover' \(3\)") as info:
        ingest(make_zip(few), IngestOptions())
    assert info.value.details["classes"] == ["pullover"]


def test_the_split_depends_on_the_seed_only(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "d", per_class=20)
    archive = make_zip(folder)
    a, b = ingest(archive, IngestOptions(seed=1)), ingest(archive, IngestOptions(seed=1))
    c = ingest(archive, IngestOptions(seed=2))
    assert torch.equal(a.split, b.split) and not torch.equal(a.split, c.split)
    assert _split_counts(a) == _split_counts(c)


def test_the_decoded_cache_file_round_trips(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "d", per_class=6, fmt="jpeg", sizes=(30, 40))
    data = ingest(make_tar(folder), IngestOptions())
    path = tmp_path / "cache" / "abc.pt"
    save_ingested(data, path)
    assert [p.name for p in path.parent.iterdir()] == ["abc.pt"]  # no temporary file left
    back = load_ingested(path)
    assert torch.equal(back.images, data.images) and torch.equal(back.split, data.split)
    assert back.classes == data.classes and back.files == data.files
    assert (back.image_size, back.channels, back.mean, back.std, back.report) == (
        data.image_size,
        data.channels,
        data.mean,
        data.std,
        data.report,
    )
    path.write_bytes(b"garbage")
    with pytest.raises(Exception):  # noqa: B017 (torch's own error for a file that is no cache)
        load_ingested(path)


def test_a_tar_with_only_folders_and_no_images_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "empty.tar"
    with tarfile.open(target, "w") as tf:
        info = tarfile.TarInfo("cats")
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
        readme = tarfile.TarInfo("cats/readme.txt")
        readme.size = 2
        tf.addfile(readme, io.BytesIO(b"hi"))
    with pytest.raises(InvalidDataset, match="no file in the archive could be decoded"):
        ingest(target, IngestOptions())
    with pytest.raises(InvalidDataset):
        ingest(zip_members(tmp_path / "none.zip", {"a.txt": b"x"}), IngestOptions())


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "bmp", "gif"])
def test_each_image_format_is_decoded(tmp_path: Path, fmt: str) -> None:
    folder = write_class_folders(tmp_path / fmt, per_class=5, sizes=(28, 36), fmt=fmt)
    data = ingest(make_zip(folder), IngestOptions(image_size=28))
    assert data.report["skipped"] == [] and tuple(data.images.shape) == (15, 1, 28, 28)
    # Each picture's pixels, give or take the format's losses and the resize.
    with Image.open(folder / data.files[0]) as first:
        small = first.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    expected = np.asarray(small, dtype=np.float64)
    assert np.abs(data.images[0, 0].numpy() - expected).mean() < 12


@pytest.mark.slow  # starts a helper process
@pytest.mark.parametrize("held", [True, False], ids=["in-memory", "streamed"])
def test_helper_processes_change_nothing_but_the_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    folder = write_class_folders(tmp_path / "t", per_class=40, sizes=(28, 50, 70), fmt="jpeg")
    archive = make_zip(folder)
    if not held:
        monkeypatch.setattr("cnnlab.datasets.ingest.IN_MEMORY_BYTES", 0)
    one = ingest(archive, IngestOptions(workers=1))
    monkeypatch.setattr(decoders, "HELPERS_FROM_FILES", 0)
    asked: list[str] = []
    submit = decoders.HelperDecoder.submit
    monkeypatch.setattr(
        decoders.HelperDecoder,
        "submit",
        lambda self, request: asked.append(request[0]) or submit(self, request),
    )
    two = ingest(archive, IngestOptions(workers=2))
    assert set(asked) == ({"open", "finish"} if held else {"decode", "fit"})
    assert torch.equal(one.images, two.images) and one.files == two.files
    assert one.report == two.report


def _width(path: Path) -> int:
    with Image.open(path) as im:
        return im.size[0]


def test_archives_too_big_to_hold_are_reduced_first_then_sized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_class_folders(tmp_path / "r", per_class=6, sizes=(28, 30, 100), fmt="png")
    archive = make_zip(folder)
    held = ingest(archive, IngestOptions())
    # Past the in-memory limit, each picture is decoded once, reduced to at most 64 a side, and
    # brought to the size once every shorter side is known.
    monkeypatch.setattr("cnnlab.datasets.ingest.IN_MEMORY_BYTES", 0)
    streamed = ingest(archive, IngestOptions())
    assert streamed.image_size == held.image_size == 30 and streamed.files == held.files
    small = [i for i, f in enumerate(held.files) if _width(folder / f) <= 64]
    assert torch.equal(streamed.images[small], held.images[small])  # never reduced: the same
    diff = (streamed.images.float() - held.images.float()).abs().mean()
    assert diff < 3  # the big ones resized twice: close


@pytest.mark.parametrize(
    "options",
    [
        IngestOptions(image_size=8),
        IngestOptions(image_size=300),
        IngestOptions(test_size=0.0),
        IngestOptions(test_size=1.0),
        IngestOptions(resize="stretch"),  # type: ignore[arg-type]
    ],
)
def test_options_out_of_range_are_refused(tmp_path: Path, options: IngestOptions) -> None:
    with pytest.raises(ValueError):
        ingest(tmp_path / "never-read.zip", options)
