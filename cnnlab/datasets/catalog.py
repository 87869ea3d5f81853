"""What each dataset is — shape, classes, normalisation, split sizes — and where its files live.

Nothing here decodes pixels or imports torch: the API validates specs with it.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True)
class SplitSizes:
    train: int
    test: int


def _idx_header(path: Path, compressed: bool) -> tuple[int, list[int]]:
    """An IDX file's header length and dimensions (the first is the number of items)."""
    opener = gzip.open if compressed else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4:
            raise ValueError("not an IDX file of bytes")
        raw = f.read(4 * head[3])
    if len(raw) < 4 * head[3]:
        raise ValueError("header cut short")
    return 4 + 4 * head[3], list(struct.unpack(f">{head[3]}I", raw))


def _stored_size(path: Path, compressed: bool) -> int:
    """The file's size once decompressed: a gzip file's last four bytes hold it (mod 2**32)."""
    if not compressed:
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, 2)
        return int(struct.unpack("<I", f.read(4))[0])


def _idx_count(files: DatasetFiles, train: bool) -> int:
    """The number of images in an IDX split, checked against both files' lengths, so a
    truncated or mismatched file is :class:`DatasetDamaged`, found without decoding it."""
    counts = []
    for path, ndim in zip(files.paths(train), (3, 1), strict=True):
        try:
            header, dims = _idx_header(path, files.compressed)
            if len(dims) != ndim:
                raise ValueError(f"{len(dims)} dimensions, expected {ndim}")
            expected = header + math.prod(dims)
            if _stored_size(path, files.compressed) != expected % 2**32:
                raise ValueError(f"truncated or padded: the header promises {expected} bytes")
        except (OSError, EOFError, ValueError, struct.error) as exc:
            raise DatasetDamaged(files.meta.name, files.root, f"{path.name}: {exc}") from None
        counts.append(dims[0])
    if counts[0] != counts[1]:
        reason = f"{counts[0]} images but {counts[1]} labels in the {'train' if train else 'test'}"
        raise DatasetDamaged(files.meta.name, files.root, f"{reason} split")
    return counts[0]


def split_sizes(name: str, settings: Settings) -> SplitSizes:
    """Number of images in the train and test splits, without decoding pixels where possible.

    IDX files carry the count in their header (their lengths are checked against it). CIFAR-10
    batches don't, so their counts come from a small sidecar file written when the batches were
    first decoded (see :mod:`cnnlab.datasets.loading`). Damaged files are :class:`DatasetDamaged`.
    """
    if get_meta(name).decoded is not None:  # an upload: its sizes are in its record
        sizes = get_meta(name).standard_sizes
        return SplitSizes(train=sizes[0], test=sizes[1])
    files = locate(name, settings)
    meta = files.meta
    if meta.name != "cifar10":
        return SplitSizes(train=_idx_count(files, True), test=_idx_count(files, False))
    sidecar = sizes_sidecar(files, settings)
    if sidecar.is_file():
        return SplitSizes(**json.loads(sidecar.read_text()))
    # Decoding reads (and checks) the batches: a damaged one is DatasetDamaged.
    from cnnlab.datasets.loading import load_split  # decodes and writes the sidecar

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
    reason: str | None = None  # why not, when the files are there but damaged

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
        info.reason = exc.details.get("reason")
        return info
    info.available = True
    info.train_size, info.test_size = sizes.train, sizes.test
    return info
