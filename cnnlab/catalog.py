"""What each dataset is — shape, classes, normalisation, split sizes — and where its files live.

Nothing here decodes pixels or imports torch: the API validates specs with it.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import Settings


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


def get_meta(name: str) -> DatasetMeta:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}") from None


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


@dataclass(frozen=True)
class SplitSizes:
    train: int
    test: int


def _idx_count(path: Path, compressed: bool) -> int:
    opener = gzip.open if compressed else open
    with opener(path, "rb") as f:
        header = f.read(8)
    return int(struct.unpack(">I", header[4:8])[0])


def split_sizes(name: str, settings: Settings) -> SplitSizes:
    """Number of images in the train and test splits, without decoding pixels where possible.

    IDX files carry the count in their header. CIFAR-10 batches don't, so their counts come from a
    small sidecar file written when the batches were first decoded (see :mod:`cnnlab.data`).
    """
    files = locate(name, settings)
    meta = files.meta
    if meta.name != "cifar10":
        return SplitSizes(
            train=_idx_count(files.paths(True)[1], files.compressed),
            test=_idx_count(files.paths(False)[1], files.compressed),
        )
    sidecar = sizes_sidecar(files, settings)
    if sidecar.is_file():
        return SplitSizes(**json.loads(sidecar.read_text()))
    from cnnlab.data import load_split  # decodes and writes the sidecar

    train = load_split(name, train=True, settings=settings)
    test = load_split(name, train=False, settings=settings)
    return SplitSizes(train=len(train.labels), test=len(test.labels))


def sizes_sidecar(files: DatasetFiles, settings: Settings) -> Path:
    return settings.cache_dir / f"{files.meta.name}-{cache_key(files)}-sizes.json"


def cache_key(files: DatasetFiles) -> str:
    import hashlib

    return hashlib.sha256(files.fingerprint().encode()).hexdigest()[:16]


@dataclass
class DatasetInfo:
    """Metadata served to clients: everything but the pixels."""

    name: str
    shape: tuple[int, int, int]
    class_names: list[str]
    mean: list[float]
    std: list[float]
    train_size: int | None = None
    test_size: int | None = None
    available: bool = False
    tried: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe(name: str, settings: Settings) -> DatasetInfo:
    meta = get_meta(name)
    info = DatasetInfo(
        name=name,
        shape=meta.shape,
        class_names=list(meta.class_names),
        mean=list(meta.mean),
        std=list(meta.std),
    )
    try:
        sizes = split_sizes(name, settings)
    except DatasetUnavailable as exc:
        info.tried = list(exc.details["tried"])
        return info
    info.available = True
    info.train_size, info.test_size = sizes.train, sizes.test
    return info
