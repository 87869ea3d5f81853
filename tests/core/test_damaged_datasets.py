"""Damaged dataset files are reported as the dataset unavailable, with the reason, never a crash."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from cnnlab.datasets.catalog import DatasetDamaged
from cnnlab.datasets.loading import load_split
from cnnlab.datasets.sizes import describe, split_sizes
from cnnlab.errors import DatasetUnavailable
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import TrainSpec
from cnnlab.spec.validate import validate_spec
from tests.utils.datasets import write_cifar10, write_idx_dataset, write_mnist


def _settings(data_dir: Path, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir)


def _damaged(name: str, settings: Settings) -> DatasetDamaged:
    with pytest.raises(DatasetDamaged) as info:
        split_sizes(name, settings)
    exc = info.value
    assert isinstance(exc, DatasetUnavailable)  # the same error type users program against
    assert exc.code == "dataset_unavailable" and exc.status_code == 422
    assert exc.details["field"] == "dataset" and exc.details["dataset"] == name
    info_ = describe(name, settings)
    assert info_.available is False and info_.reason == exc.details["reason"]
    assert info_.train_size is None
    return exc


def _drop_key(path: Path, key: str) -> None:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    del batch[key]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def test_a_cifar10_batch_without_its_data_is_named(data_dir: Path, tmp_path: Path) -> None:
    root = write_cifar10(data_dir, n_train=50, n_test=10)
    _drop_key(root / "data_batch_3", "data")
    exc = _damaged("cifar10", _settings(data_dir, tmp_path))
    assert exc.details["reason"] == "data_batch_3: no 'data' key"
    assert "data_batch_3" in exc.message and str(root) in exc.message


def test_a_cifar10_batch_that_is_no_pickle_is_named(data_dir: Path, tmp_path: Path) -> None:
    root = write_cifar10(data_dir, n_train=50, n_test=10)
    (root / "test_batch").write_bytes(b"\x80\x02}q\x00(X")  # cut short
    settings = _settings(data_dir, tmp_path)
    exc = _damaged("cifar10", settings)
    assert exc.details["reason"].startswith("test_batch: unreadable")
    # Once found damaged, the same files are not read again; replaced files are.
    assert describe("cifar10", settings).available is False
    write_cifar10(data_dir, n_train=50, n_test=10)
    info = describe("cifar10", settings)
    assert info.available is True and (info.train_size, info.test_size) == (50, 10)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_truncated_idx_file_is_named(data_dir: Path, tmp_path: Path, compressed: bool) -> None:
    raw = write_idx_dataset(data_dir / "MNIST" / "raw", 40, 10, compressed=compressed)
    suffix = ".gz" if compressed else ""
    images = raw / f"train-images-idx3-ubyte{suffix}"
    data = gzip.decompress(images.read_bytes()) if compressed else images.read_bytes()
    cut = data[: len(data) - 100]
    images.write_bytes(gzip.compress(cut) if compressed else cut)
    exc = _damaged("mnist", _settings(data_dir, tmp_path))
    reason = exc.details["reason"]
    assert reason.startswith(f"train-images-idx3-ubyte{suffix}: truncated"), reason


def test_idx_files_that_disagree_or_are_not_idx_are_named(data_dir: Path, tmp_path: Path) -> None:
    raw = write_mnist(data_dir, n_train=40, n_test=10)
    settings = _settings(data_dir, tmp_path)
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:8].replace(b"\x00\x00\x00\x0a", b"\x00\x00\x00\x09"))
    labels.write_bytes(labels.read_bytes() + bytes(9))
    assert (
        _damaged("mnist", settings).details["reason"] == "10 images but 9 labels in the test split"
    )
    labels.write_bytes(b"\x00\x00")
    assert (
        "t10k-labels-idx1-ubyte: not an IDX file" in _damaged("mnist", settings).details["reason"]
    )


def test_submitting_on_a_damaged_dataset_is_a_422_naming_dataset(
    data_dir: Path, tmp_path: Path
) -> None:
    root = write_cifar10(data_dir, n_train=50, n_test=10)
    _drop_key(root / "data_batch_1", "data")
    spec = TrainSpec.model_validate({"dataset": "cifar10", "val_size": 10})
    with pytest.raises(DatasetDamaged) as info:
        validate_spec(spec, _settings(data_dir, tmp_path))
    assert info.value.to_dict()["field"] == "dataset"


def test_training_on_a_damaged_dataset_fails_with_the_reason(data_dir: Path) -> None:
    root = write_cifar10(data_dir, n_train=50, n_test=10)
    _drop_key(root / "data_batch_2", "labels")
    with pytest.raises(DatasetDamaged, match="data_batch_2: no 'labels' key"):
        load_split("cifar10", train=True, settings=get_settings())
