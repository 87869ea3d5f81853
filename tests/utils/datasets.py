"""Tiny datasets written in the exact on-disk formats torchvision reads.

Images are class-dependent patterns plus noise, so a model can learn them in a few batches.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from cnnlab.datasets.catalog import DATASETS

IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def patterned_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images of ``shape`` (H, W) or (H, W, C) whose bright band encodes the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, *shape)).astype(np.uint8)
    h = shape[0]
    band = max(1, h // 10)
    for i, y in enumerate(labels):
        start = int(y) * h // 10
        images[i, start : start + band] = 230
    return images, labels


def _idx_bytes(array: np.ndarray) -> bytes:
    # IDX: two zero bytes, the type code (0x08 = unsigned byte), the rank, then big-endian dims.
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(
    raw_dir: Path, n_train: int, n_test: int, *, compressed: bool = False, seed: int = 0
) -> Path:
    """Write MNIST-format IDX files (as in ``DATA_DIR/MNIST/raw`` or Debian's Fashion-MNIST)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for names, n, s in ((IDX_TRAIN, n_train, seed), (IDX_TEST, n_test, seed + 1)):
        images, labels = patterned_images(n, (28, 28), s)
        for name, array in zip(names, (images, labels), strict=True):
            data = _idx_bytes(array)
            if compressed:
                (raw_dir / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw_dir / name).write_bytes(data)
    return raw_dir


def write_mnist(data_dir: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    return write_idx_dataset(data_dir / "MNIST" / "raw", n_train, n_test, seed=seed)


def write_cifar10(data_dir: Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write CIFAR-10 python batches: five train batches, one test batch, ``batches.meta``."""
    root = data_dir / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    images, labels = patterned_images(n_train, (32, 32, 3), seed)
    chunks = np.array_split(np.arange(n_train), 5)
    for i, idx in enumerate(chunks, start=1):
        _write_batch(root / f"data_batch_{i}", images[idx], labels[idx], f"training batch {i} of 5")
    t_images, t_labels = patterned_images(n_test, (32, 32, 3), seed + 1)
    _write_batch(root / "test_batch", t_images, t_labels, "testing batch 1 of 1")
    names = list(DATASETS["cifar10"].class_names)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 10000, "num_vis": 3072}, f, 2)
    return root


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    # CIFAR stores each image as 3072 bytes: the red plane, then green, then blue (row-major).
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    # The published files are Python 2 pickles whose keys load as str with encoding="latin1".
    batch = {
        "batch_label": name,
        "labels": [int(x) for x in labels],
        "data": data,
        "filenames": [f"img_{i}.png" for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
