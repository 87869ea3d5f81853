"""Decoded datasets as uint8 tensors (a spec's train/validation/test split of them is
:mod:`cnnlab.engine.splits`'s).

IDX files (MNIST, Fashion-MNIST) are read directly, CIFAR-10's batches through torchvision's
reader; each split is decoded once and cached as tensors under ``CNNLAB_HOME/cache`` keyed by the
source files' fingerprint, so a changed file is read again.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import torch

from cnnlab.datasets.catalog import (
    DatasetDamaged,
    DatasetFiles,
    cache_key,
    get_meta,
    locate,
    sizes_sidecar,
)
from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import Settings, get_settings


@dataclass(frozen=True)
class ImageSet:
    """``images``: uint8 N×C×H×W; ``labels``: int64 N."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])

    def to(self, device: torch.device) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device))


_memo: dict[tuple[str, str, bool], ImageSet] = {}
# Splits found damaged, by the same key: the files' fingerprint changes when they are replaced.
_damaged: dict[tuple[str, str, bool], DatasetDamaged] = {}
_memo_lock = Lock()


def _cifar10_reader() -> Any:
    """torchvision's CIFAR-10 reader without its checksum gate: it still parses the pickled
    batches, but accepts any well-formed files (the published ones, or a test's tiny ones).
    Class names come from the catalog, so ``batches.meta`` is not needed."""
    from torchvision.datasets import CIFAR10

    class CIFAR10Files(CIFAR10):
        def _check_integrity(self) -> bool:
            root = Path(self.root) / self.base_folder
            return all((root / name).is_file() for name, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            pass

    return CIFAR10Files


def _cifar10_problem(files: DatasetFiles, train: bool) -> str:
    """What is wrong with a split's CIFAR-10 batches that torchvision could not read: the first
    file that is not a pickled dict with ``data`` (N×3072 bytes) and ``labels`` (N of them)."""
    for path in files.paths(train):
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
        except Exception as exc:
            return f"{path.name}: unreadable ({type(exc).__name__}: {exc})"
        if not isinstance(batch, dict):
            return f"{path.name}: not a CIFAR-10 batch (a {type(batch).__name__})"
        missing = [key for key in ("data", "labels") if key not in batch]
        if missing:
            return f"{path.name}: no {' or '.join(repr(k) for k in missing)} key"
        data = np.asarray(batch["data"])
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch["labels"]):
            return f"{path.name}: {data.shape} pixels for {len(batch['labels'])} labels"
    return ""


def _decode(files: DatasetFiles, train: bool) -> ImageSet:
    """The split's images and labels; :class:`DatasetDamaged` naming the file at fault when
    they cannot be read."""
    try:
        return _read(files, train)
    except DatasetUnavailable:
        raise
    except Exception as exc:  # torchvision's readers fail in many ways on a damaged file
        reason = _cifar10_problem(files, train) if files.meta.name == "cifar10" else ""
        if not reason:
            names = ", ".join(p.name for p in files.paths(train))
            reason = f"cannot read {names} ({type(exc).__name__}: {exc})"
        raise DatasetDamaged(files.meta.name, files.root, reason) from exc


def _read_idx(path: Path, compressed: bool, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format) as an array of its dimensions; ValueError
    when it is not one, or its length disagrees with its header."""
    data = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise ValueError(f"{path.name}: not an IDX file of {ndim}-dimensional bytes")
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) != header + math.prod(dims):
        raise ValueError(f"{path.name}: {len(data)} bytes, the header promises {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read(files: DatasetFiles, train: bool) -> ImageSet:
    meta = files.meta
    if meta.name == "cifar10":
        # torchvision is imported only to decode CIFAR-10 (a second of start-up a cache hit skips).
        ds = _cifar10_reader()(str(files.root.parent), train=train, download=False)
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return ImageSet(images, torch.tensor(ds.targets, dtype=torch.int64))
    # MNIST-format IDX files, read directly: no torchvision import, no decompressed copy on disk.
    image_path, label_path = files.paths(train)
    pixels = _read_idx(image_path, files.compressed, 3)
    labels = _read_idx(label_path, files.compressed, 1)
    if len(pixels) != len(labels):
        raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
    # Copied out of the file's bytes (read-only) into tensors of their own.
    return ImageSet(
        torch.from_numpy(pixels.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
    )


def _download(name: str, settings: Settings) -> None:
    from torchvision import datasets as tv

    meta = get_meta(name)
    cls = {"mnist": tv.MNIST, "fashion_mnist": tv.FashionMNIST, "cifar10": tv.CIFAR10}[name]
    root = settings.resolved_data_dir
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network, checksum or disk trouble: say which dataset and where
        raise DatasetUnavailable(
            name, [str(root / meta.folder)], f"download failed: {exc}"
        ) from exc


def find_files(name: str, settings: Settings) -> DatasetFiles:
    try:
        return locate(name, settings)
    except DatasetUnavailable:
        if not settings.download:
            raise
    _download(name, settings)
    return locate(name, settings)


def _atomic_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(obj, str):
            Path(tmp).write_text(obj)
        else:
            torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_cached(path: Path) -> ImageSet | None:
    """A split from the tensor cache (plain tensors: loaded with ``weights_only=True``), or None
    when there is none or it cannot be read (then it is decoded and written again)."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
        return ImageSet(cached["images"], cached["labels"])
    except Exception:
        return None


def decoded_path(checksum: str, settings: Settings) -> Path:
    """Where a worker keeps an uploaded version's decoded tensors (``save_ingested``'s file),
    named by their sha256: the same bytes on every machine, fetched once from the store."""
    return settings.cache_dir / "datasets" / f"{checksum}.ingested"


def _load_upload(checksum: str, train: bool, settings: Settings) -> ImageSet:
    """An uploaded version's split: train (with validation drawn from it) or its frozen test."""
    from cnnlab.datasets.ingest import load_ingested

    key = ("upload", checksum, train)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    path = decoded_path(checksum, settings)
    if not path.is_file():
        raise DatasetUnavailable(checksum, [str(path)], "the worker fetches it before training")
    data = load_ingested(path)
    test = data.split == 2
    for part, mask in ((False, test), (True, ~test)):
        index = torch.nonzero(mask).flatten()
        subset = ImageSet(data.images[index], data.labels[index])
        with _memo_lock:
            _memo[("upload", checksum, part)] = subset
    with _memo_lock:
        return _memo[key]


def load_split(name: str, *, train: bool, settings: Settings | None = None) -> ImageSet:
    """One split of a dataset, decoded (first call) or from the tensor cache (later calls)."""
    settings = settings or get_settings()
    decoded = get_meta(name).decoded
    if decoded is not None:
        return _load_upload(decoded, train, settings)
    files = find_files(name, settings)
    key = cache_key(files)
    memo_key = (name, key, train)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    path = settings.cache_dir / f"{name}-{key}-{'train' if train else 'test'}.pt"
    with _memo_lock:
        damaged = _damaged.get(memo_key)
    if damaged is not None:
        raise damaged  # the same files: no need to read them again to fail again
    data = _load_cached(path)
    if data is None:
        try:
            data = _decode(files, train)
        except DatasetDamaged as exc:
            with _memo_lock:
                _damaged[memo_key] = exc
            raise
        _atomic_save({"images": data.images, "labels": data.labels}, path)
    sidecar = sizes_sidecar(files, settings)
    if not train and not sidecar.is_file():
        train_n = len(load_split(name, train=True, settings=settings))
        _atomic_save(json.dumps({"train": train_n, "test": len(data)}), sidecar)
    with _memo_lock:
        _memo[memo_key] = data
    return data
