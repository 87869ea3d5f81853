"""Decoded datasets as uint8 tensors, and the deterministic train/validation/test split.

Files are read through torchvision's dataset classes, decoded once, and cached as tensors under
``CNNLAB_HOME/cache`` keyed by the source files' fingerprint, so a changed file is read again.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import torch

from cnnlab.catalog import DatasetFiles, cache_key, get_meta, locate, sizes_sidecar
from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import Settings, get_settings
from cnnlab.spec import TrainSpec, check_against_dataset, train_count, val_count


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


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet


_memo: dict[tuple[str, str, bool], ImageSet] = {}
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


def _decode(files: DatasetFiles, train: bool) -> ImageSet:
    # torchvision is imported only to decode files (seconds of start-up a cache hit skips).
    from torchvision import datasets as tv

    meta = files.meta
    if meta.name == "cifar10":
        ds = _cifar10_reader()(str(files.root.parent), train=train, download=False)
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return ImageSet(images, torch.tensor(ds.targets, dtype=torch.int64))
    # MNIST-format IDX files: torchvision reads uncompressed files from ROOT/<Class>/raw.
    cls = tv.MNIST if meta.name == "mnist" else tv.FashionMNIST
    with tempfile.TemporaryDirectory(prefix="cnnlab-idx-") as tmp:
        if files.compressed:
            raw = Path(tmp) / cls.__name__ / "raw"
            raw.mkdir(parents=True)
            for path in files.paths(True) + files.paths(False):
                with gzip.open(path, "rb") as src, open(raw / path.name[:-3], "wb") as dst:
                    shutil.copyfileobj(src, dst)
            root = tmp
        else:
            root = str(files.root.parent.parent)
        ds = cls(root, train=train, download=False)
        return ImageSet(ds.data.unsqueeze(1).contiguous(), ds.targets.to(torch.int64))


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


def load_split(name: str, *, train: bool, settings: Settings | None = None) -> ImageSet:
    """One split of a dataset, decoded (first call) or from the tensor cache (later calls)."""
    settings = settings or get_settings()
    files = find_files(name, settings)
    key = cache_key(files)
    memo_key = (name, key, train)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    path = settings.cache_dir / f"{name}-{key}-{'train' if train else 'test'}.pt"
    if path.is_file():
        cached = torch.load(path)
        data = ImageSet(cached["images"], cached["labels"])
    else:
        data = _decode(files, train)
        _atomic_save({"images": data.images, "labels": data.labels}, path)
    sidecar = sizes_sidecar(files, settings)
    if not train and not sidecar.is_file():
        train_n = len(load_split(name, train=True, settings=settings))
        _atomic_save(json.dumps({"train": train_n, "test": len(data)}), sidecar)
    with _memo_lock:
        _memo[memo_key] = data
    return data


def split_indices(spec: TrainSpec, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices into a train split of ``n`` images: the validation
    hold-out first, then the training portion, the same for the same spec."""
    n_val = val_count(spec, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(spec.seed))
    return perm[n_val : n_val + train_count(spec, n)], perm[:n_val]


def make_splits(spec: TrainSpec, settings: Settings | None = None) -> Splits:
    settings = settings or get_settings()
    full = load_split(spec.dataset, train=True, settings=settings)
    test = load_split(spec.dataset, train=False, settings=settings)
    check_against_dataset(spec, len(full))
    train_idx, val_idx = split_indices(spec, len(full))
    return Splits(train=full.subset(train_idx), val=full.subset(val_idx), test=test)
