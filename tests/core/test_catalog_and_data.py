from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.datasets import catalog, sizes
from cnnlab.datasets import loading as data
from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import get_settings
from tests.utils.datasets import patterned_images, write_cifar10, write_idx_dataset, write_mnist


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    data._memo.clear()


def test_missing_dataset_names_dataset_and_every_path(data_dir: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        catalog.locate("mnist", get_settings())
    err = info.value
    assert "'mnist'" in err.message
    assert str(data_dir / "MNIST" / "raw") in err.message
    assert err.details["tried"] == [str(data_dir / "MNIST" / "raw")]
    assert "CNNLAB_DOWNLOAD=1" in err.message


def test_cifar_missing_names_torchvision_folder(data_dir: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="cifar-10-batches-py"):
        data.load_split("cifar10", train=True)


def test_mnist_idx_through_torchvision(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=120, n_test=30, seed=3)
    train = data.load_split("mnist", train=True)
    test = data.load_split("mnist", train=False)
    expected, labels = patterned_images(120, (28, 28), 3)
    assert train.images.dtype == torch.uint8 and train.images.shape == (120, 1, 28, 28)
    assert np.array_equal(train.images[:, 0].numpy(), expected)
    assert np.array_equal(train.labels.numpy(), labels)
    assert len(test) == 30
    assert sizes.split_sizes("mnist", get_settings()) == sizes.SplitSizes(120, 30)


def test_gzip_idx_files_are_read(data_dir: Path) -> None:
    write_idx_dataset(data_dir / "FashionMNIST" / "raw", 50, 20, compressed=True, seed=1)
    train = data.load_split("fashion_mnist", train=True)
    expected, _ = patterned_images(50, (28, 28), 1)
    assert np.array_equal(train.images[:, 0].numpy(), expected)


def test_cifar10_batches_through_torchvision(data_dir: Path) -> None:
    write_cifar10(data_dir, n_train=50, n_test=10, seed=2)
    train = data.load_split("cifar10", train=True)
    expected, labels = patterned_images(50, (32, 32, 3), 2)
    assert train.images.shape == (50, 3, 32, 32)
    # CIFAR batches are split into five files; order is preserved end to end.
    assert np.array_equal(train.images.permute(0, 2, 3, 1).numpy(), expected)
    assert np.array_equal(train.labels.numpy(), labels)
    assert sizes.split_sizes("cifar10", get_settings()) == sizes.SplitSizes(50, 10)


def test_decoded_tensors_are_cached_and_a_changed_file_is_reread(data_dir: Path) -> None:
    raw = write_mnist(data_dir, n_train=40, n_test=10)
    first = data.load_split("mnist", train=True)
    cached = sorted(get_settings().cache_dir.glob("mnist-*-train.pt"))
    assert len(cached) == 1
    data._memo.clear()
    again = data.load_split("mnist", train=True)
    assert torch.equal(first.images, again.images)

    write_idx_dataset(raw, 60, 10, seed=9)  # new content and size: a new fingerprint
    os.utime(raw / "train-images-idx3-ubyte", ns=(1, 1))
    data._memo.clear()
    changed = data.load_split("mnist", train=True)
    assert len(changed) == 60
    assert len(sorted(get_settings().cache_dir.glob("mnist-*-train.pt"))) == 2


def test_debian_fashion_mnist_is_found(real_fashion_mnist: Path) -> None:
    files = catalog.locate("fashion_mnist", get_settings())
    assert files.root == real_fashion_mnist and files.compressed
    assert sizes.split_sizes("fashion_mnist", get_settings()) == sizes.SplitSizes(60000, 10000)
    with gzip.open(real_fashion_mnist / "t10k-labels-idx1-ubyte.gz") as f:
        raw_labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    test = data.load_split("fashion_mnist", train=False)
    assert np.array_equal(test.labels.numpy(), raw_labels)


def test_describe_without_pixels(data_dir: Path) -> None:
    info = sizes.describe("cifar10", get_settings())
    assert not info.available and info.shape == (3, 32, 32) and info.class_names[0] == "airplane"
    write_mnist(data_dir, n_train=70, n_test=10)
    info = sizes.describe("mnist", get_settings())
    assert info.available and info.train_size == 70 and info.test_size == 10
