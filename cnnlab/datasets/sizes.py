"""How many images a dataset's splits hold, and what clients are told of a dataset
(:func:`describe`), read from its files' headers without decoding pixels where possible.

Above both :mod:`cnnlab.datasets.catalog` (what each dataset is, where its files live) and
:mod:`cnnlab.datasets.loading` (decoding), which a CIFAR-10 split's size needs.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cnnlab.datasets.catalog import DatasetDamaged, DatasetFiles, get_meta, locate, sizes_sidecar
from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import Settings


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
    # Decoding reads (and checks) the batches (a damaged one is DatasetDamaged) and writes the
    # sidecar.
    from cnnlab.datasets.loading import load_split

    train = load_split(name, train=True, settings=settings)
    test = load_split(name, train=False, settings=settings)
    return SplitSizes(train=len(train.labels), test=len(test.labels))


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
