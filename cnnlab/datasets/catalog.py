"""What each dataset is — shape, classes, normalisation — and where its files live (their split
sizes: :mod:`cnnlab.datasets.sizes`).

Nothing here decodes pixels or imports torch: the API validates specs with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError, DatasetUnavailable, SpecError
from cnnlab.settings import Settings


class DatasetDamaged(DatasetUnavailable):
    """The dataset's files are there but cannot be read (truncated, or not in the format): the
    same ``dataset_unavailable`` error, with ``reason`` saying which file and what is wrong."""

    def __init__(self, dataset: str, root: Path | str, reason: str) -> None:
        CnnlabError.__init__(
            self,
            f"dataset {dataset!r} is damaged ({reason}; in {root}): replace its files",
            dataset=dataset,
            field="dataset",
            tried=[str(root)],
            reason=reason,
        )


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    folder: str  # torchvision's folder name under the data directory
    shape: tuple[int, int, int]  # C, H, W
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    standard_sizes: tuple[int, int]  # train, test as published (what a download brings)
    debian_dir: bool = False  # also found in Debian's dataset package directory
    # An uploaded version's: the sha256 of its decoded tensors (the workers' cache key and the
    # blob they come from) and how its images were brought to one size. None for a built-in.
    decoded: str | None = None
    resize: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.shape[0]


_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS: dict[str, DatasetMeta] = {
    "mnist": DatasetMeta(
        name="mnist",
        folder="MNIST",
        shape=(1, 28, 28),
        class_names=tuple(str(i) for i in range(10)),
        mean=(0.1307,),
        std=(0.3081,),
        train_files=_IDX_TRAIN,
        test_files=_IDX_TEST,
        standard_sizes=(60000, 10000),
    ),
    "fashion_mnist": DatasetMeta(
        name="fashion_mnist",
        folder="FashionMNIST",
        shape=(1, 28, 28),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mean=(0.2860,),
        std=(0.3530,),
        train_files=_IDX_TRAIN,
        test_files=_IDX_TEST,
        standard_sizes=(60000, 10000),
        debian_dir=True,
    ),
    "cifar10": DatasetMeta(
        name="cifar10",
        folder="cifar-10-batches-py",
        shape=(3, 32, 32),
        class_names=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        standard_sizes=(50000, 10000),
    ),
}


# Uploaded versions in scope (``NAME@V`` → meta): a caller that resolved a spec's dataset
# against its owner's uploads (submit, the worker) puts them here around the work, so the code
# below that asks :func:`get_meta` sees them without knowing about owners or the database.
_uploads: ContextVar[Mapping[str, DatasetMeta] | None] = ContextVar("cnnlab_uploads", default=None)


@contextmanager
def uploads_in_scope(metas: Mapping[str, DatasetMeta]) -> Iterator[None]:
    """Make ``metas`` (uploaded versions, by ``NAME@V``) known to :func:`get_meta` within."""
    token = _uploads.set({**(_uploads.get() or {}), **metas})
    try:
        yield
    finally:
        _uploads.reset(token)


def get_meta(name: str) -> DatasetMeta:
    meta = DATASETS.get(name) or (_uploads.get() or {}).get(name)
    if meta is None:
        raise SpecError(
            "dataset",
            f"unknown dataset {name!r}; choose from {sorted(DATASETS)} (your own images train "
            "on a server: `cnnlab datasets upload`, then name them in a spec you submit there)",
        )
    return meta


def upload_meta(
    ref: str,
    *,
    decoded: str,
    channels: int,
    image_size: int,
    classes: list[str],
    mean: list[float],
    std: list[float],
    train: int,
    test: int,
    resize: str,
) -> DatasetMeta:
    """An uploaded version's meta (``ref`` is ``NAME@V``): ``train`` counts the images that
    training and validation draw from, ``test`` the version's frozen test split."""
    return DatasetMeta(
        name=ref,
        folder="",
        shape=(channels, image_size, image_size),
        class_names=tuple(classes),
        mean=tuple(mean),
        std=tuple(std),
        train_files=(),
        test_files=(),
        standard_sizes=(train, test),
        decoded=decoded,
        resize=resize,
    )


@dataclass(frozen=True)
class DatasetFiles:
    """The files found for one dataset: ``root`` holds them, ``compressed`` says ``.gz``."""

    meta: DatasetMeta
    root: Path
    compressed: bool

    def paths(self, train: bool) -> list[Path]:
        names = self.meta.train_files if train else self.meta.test_files
        suffix = ".gz" if self.compressed else ""
        return [self.root / (n + suffix) for n in names]

    def fingerprint(self) -> str:
        """Changes whenever a source file does (path, size, modification time)."""
        parts = []
        for p in self.paths(True) + self.paths(False):
            st = p.stat()
            parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        return "|".join(parts)


def candidate_dirs(meta: DatasetMeta, settings: Settings) -> list[tuple[Path, bool]]:
    """Directories searched, in order, each with whether its files are gzip-compressed."""
    base = settings.resolved_data_dir / meta.folder
    if meta.name == "cifar10":
        dirs = [(base, False)]
    else:
        dirs = [(base / "raw", False), (base / "raw", True)]
    if meta.debian_dir:
        dirs.append((settings.debian_fashion_mnist, True))
    return dirs


def locate(name: str, settings: Settings) -> DatasetFiles:
    """Find a dataset's files or raise :class:`DatasetUnavailable` naming every place tried."""
    meta = get_meta(name)
    tried = []
    for root, compressed in candidate_dirs(meta, settings):
        files = DatasetFiles(meta, root, compressed)
        if all(p.is_file() for p in files.paths(True) + files.paths(False)):
            return files
        tried.append(str(root))
    hint = (
        "set CNNLAB_DOWNLOAD=1 to download it"
        if not settings.download
        else "downloading is allowed, so it will be fetched on first use"
    )
    raise DatasetUnavailable(name, sorted(set(tried), key=tried.index), hint)


def is_available(name: str, settings: Settings) -> bool:
    try:
        locate(name, settings)
    except DatasetUnavailable:
        return False
    return True


def sizes_sidecar(files: DatasetFiles, settings: Settings) -> Path:
    return settings.cache_dir / f"{files.meta.name}-{cache_key(files)}-sizes.json"


def cache_key(files: DatasetFiles) -> str:
    return hashlib.sha256(files.fingerprint().encode()).hexdigest()[:16]
