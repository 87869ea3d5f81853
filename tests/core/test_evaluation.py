"""The confusion matrix agrees with :func:`evaluate`, batch size aside."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.datasets.catalog import get_meta
from cnnlab.datasets.loading import load_split
from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.training import (
    Normalize,
    accuracy_on_test,
    confusion_matrix,
    confusion_on_test,
    evaluate,
    fit,
)
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import write_mnist

SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}


@pytest.fixture
def trained(data_dir: Path) -> checkpoint.CheckpointDoc:
    write_mnist(data_dir, n_train=200, n_test=70)
    return fit(TrainSpec.model_validate(SPEC), max_batches=3, evaluate_test=False).best_checkpoint


def test_confusion_matrix_counts_every_image_once(trained: checkpoint.CheckpointDoc) -> None:
    model = checkpoint.load_model(trained)
    test = load_split("mnist", train=False)
    normalize = Normalize(get_meta("mnist"), torch.device("cpu"))
    matrix = confusion_matrix(model, test, normalize, num_classes=10, batch_size=32)
    assert matrix.shape == (10, 10) and matrix.dtype == torch.int64
    assert int(matrix.sum()) == len(test) == 70
    assert matrix.sum(dim=1).tolist() == torch.bincount(test.labels, minlength=10).tolist()
    _, accuracy = evaluate(model, test, normalize, batch_size=16)
    assert int(matrix.diagonal().sum()) / len(test) == pytest.approx(accuracy)
    assert torch.equal(confusion_matrix(model, test, normalize, num_classes=10), matrix)


def test_confusion_on_test_matches_the_test_accuracy(trained: checkpoint.CheckpointDoc) -> None:
    matrix = confusion_on_test(trained)
    assert int(matrix.sum()) == 70
    assert int(matrix.diagonal().sum()) / 70 == pytest.approx(accuracy_on_test(trained))
