"""Checkpoints and cached tensors are read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from cnnlab.datasets.loading import load_split
from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.training import fit
from cnnlab.errors import CheckpointError
from cnnlab.settings import get_settings
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import write_mnist


class NotAllowed:
    """Anything torch's safe unpickler has not been told about."""


def test_a_trained_checkpoint_loads_with_weights_only(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=120, n_test=20)
    spec = TrainSpec.model_validate(
        {
            "dataset": "mnist",
            "val_size": 20,
            "batch_size": 50,
            "epochs": 1,
            "device": "cpu",
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        }
    )
    result = fit(spec, settings=get_settings())
    data = checkpoint.dumps(result.last_checkpoint)
    raw = torch.load(io.BytesIO(data), weights_only=True)  # optimiser state included
    assert raw["optimizer_state"] is not None and raw["epoch"] == 1
    assert checkpoint.loads(data)["epoch"] == 1


def test_a_checkpoint_holding_an_object_is_refused() -> None:
    buf = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "version": 1, "payload": NotAllowed()}, buf)
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        checkpoint.loads(buf.getvalue())


def test_a_cache_file_that_is_no_tensor_file_is_decoded_again(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=30, n_test=10)
    settings = get_settings()
    first = load_split("mnist", train=False, settings=settings)
    (cached,) = [p for p in settings.cache_dir.glob("mnist-*-test.pt")]
    # Another process's memo is gone; the file holds an object weights_only refuses.
    from cnnlab.datasets import loading as data

    data._memo.clear()
    torch.save({"images": NotAllowed()}, cached)
    again = load_split("mnist", train=False, settings=settings)
    assert torch.equal(again.images, first.images)
    assert torch.load(cached, weights_only=True)["images"].shape == first.images.shape
