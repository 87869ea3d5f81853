"""Folders of real pictures (Fashion-MNIST, written out as image files) and archives of them, the
way a user would upload their own images."""

from __future__ import annotations

import functools
import gzip
import io
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)


def _idx(path: Path, ndim: int) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.cache
def fashion_mnist(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Real Fashion-MNIST images (N×28×28 uint8) and labels, from Debian's IDX files."""
    prefix = "train" if train else "t10k"
    images = _idx(FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz", 3)
    labels = _idx(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz", 1)
    return images, labels


def real_images(
    per_class: int, classes: Sequence[int] = tuple(range(10)), *, offset: int = 0
) -> list[tuple[int, np.ndarray]]:
    """``per_class`` distinct real images of each class (label, 28×28 uint8), skipping the
    first ``offset`` of each class."""
    images, labels = fashion_mnist()
    picked: list[tuple[int, np.ndarray]] = []
    for c in classes:
        index = np.flatnonzero(labels == c)[offset : offset + per_class]
        picked += [(c, images[i]) for i in index]
    return picked


def picture(pixels: np.ndarray, size: int | tuple[int, int], colour: bool = False) -> Image.Image:
    """A 28×28 image scaled to ``size`` (a side, or (width, height)); tinted when ``colour``."""
    im = Image.fromarray(pixels, "L")
    if colour:
        rgb = np.stack([pixels, pixels // 2, 255 - pixels], axis=-1).astype(np.uint8)
        im = Image.fromarray(rgb, "RGB")
    wh = (size, size) if isinstance(size, int) else size
    return im.resize(wh, Image.Resampling.BILINEAR) if wh != im.size else im


def write_class_folders(
    root: Path,
    *,
    per_class: int = 6,
    classes: Sequence[int] = tuple(range(3)),
    sizes: Sequence[int | tuple[int, int]] = (28,),
    fmt: str = "png",
    colour: bool = False,
    names: Sequence[str] | None = None,
    offset: int = 0,
) -> Path:
    """One folder per class under ``root`` (named by ``names`` or Fashion-MNIST's classes), each
    holding ``per_class`` real images written as ``fmt`` (png, jpeg, webp, bmp), their sizes
    cycling through ``sizes``. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    counter = 0
    for c in classes:
        folder = root / (names[list(classes).index(c)] if names else CLASS_NAMES[c])
        folder.mkdir(parents=True, exist_ok=True)
        for i, (_, pixels) in enumerate(real_images(per_class, [c], offset=offset)):
            im = picture(pixels, sizes[counter % len(sizes)], colour)
            counter += 1
            suffix = "jpg" if fmt == "jpeg" else fmt
            im.save(folder / f"{i:04d}.{suffix}", format=fmt.upper())
    return root


def encode(im: Image.Image, fmt: str = "png", **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt.upper(), **params)
    return buffer.getvalue()


def make_zip(folder: Path, target: Path | None = None, *, wrap: bool = False) -> Path:
    """``folder``'s files zipped (paths relative to it; under its name when ``wrap``, as a file
    manager's "compress folder" does)."""
    target = target or folder.with_suffix(".zip")
    base = folder.parent if wrap else folder
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(base).as_posix())
    return target


def make_tar(folder: Path, target: Path | None = None, *, gz: bool = False) -> Path:
    """``folder``'s files as a tar (gzip'd when ``gz``), paths relative to it."""
    target = target or folder.with_suffix(".tar.gz" if gz else ".tar")
    with tarfile.open(target, "w:gz" if gz else "w") as tf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tf.add(path, path.relative_to(folder).as_posix())
    return target


def zip_members(target: Path, members: dict[str, bytes]) -> Path:
    """A zip of the given names and contents, written as they are (hostile names included)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return target
