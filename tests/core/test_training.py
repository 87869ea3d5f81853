from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.evaluation_data import load_labelled, validation_set
from cnnlab.engine.training import EpochReport, accuracy_on_test, fit
from cnnlab.errors import CheckpointError, Diverged
from cnnlab.settings import get_settings
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import write_cifar10, write_mnist

COMPARED = ("epoch", "train_loss", "val_loss", "val_accuracy")


def _spec(**overrides: object) -> TrainSpec:
    doc = {
        "dataset": "mnist",
        "val_size": 100,
        "batch_size": 64,
        "epochs": 2,
        "optimizer": {"lr": 0.05, "momentum": 0.9},
        "model": {"channels": [8, 16], "dropout": 0.25},
    }
    doc.update(overrides)
    return TrainSpec.model_validate(doc)


def _rows(result_epochs: list) -> list[tuple]:
    return [tuple(getattr(m, k) for k in COMPARED) for m in result_epochs]


@pytest.fixture
def mnist(data_dir: Path) -> Path:
    return write_mnist(data_dir, n_train=500, n_test=100)


def test_learns_the_tiny_dataset_and_reports_every_epoch(mnist: Path) -> None:
    reports: list[EpochReport] = []
    result = fit(_spec(epochs=3), on_epoch=reports.append)
    assert [r.metrics.epoch for r in reports] == [1, 2, 3]
    assert all(r.metrics.images_per_second > 0 and r.metrics.seconds > 0 for r in reports)
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    assert result.best_val_accuracy >= 0.9
    assert result.test_accuracy is not None and result.test_accuracy >= 0.9
    assert reports[0].improved
    assert result.best_checkpoint["epoch"] == result.best_epoch
    assert accuracy_on_test(result.best_checkpoint) == result.test_accuracy
    # The sets the best weights were evaluated on come back, for the job's report.
    assert result.evaluated is not None and result.evaluated.test is not None
    val, test = validation_set(_spec(), get_settings()), load_labelled("mnist", get_settings())
    for got, want in ((result.evaluated.validation, val), (result.evaluated.test, test)):
        assert (got.ref, got.class_names) == (want.ref, want.class_names)
        assert torch.equal(got.images, want.images) and torch.equal(got.labels, want.labels)


def test_same_spec_and_seed_give_the_same_numbers(mnist: Path) -> None:
    a, b = fit(_spec()), fit(_spec())
    assert _rows(a.epochs) == _rows(b.epochs)
    c = fit(_spec(seed=1))
    assert _rows(c.epochs) != _rows(a.epochs)


def test_resume_gives_the_same_metrics_as_an_uninterrupted_run(mnist: Path) -> None:
    straight = fit(_spec(epochs=4))
    first = fit(_spec(epochs=2))
    # Round-trip the checkpoint through bytes, as the service stores it.
    last = checkpoint.loads(checkpoint.dumps(first.last_checkpoint))
    resumed = fit(_spec(epochs=4), resume=last)
    assert _rows(resumed.epochs) == _rows(straight.epochs)
    assert resumed.test_accuracy == straight.test_accuracy
    for key, value in straight.last_checkpoint["model_state"].items():
        assert torch.equal(value, resumed.last_checkpoint["model_state"][key]), key


def test_resume_refuses_a_different_spec(mnist: Path) -> None:
    first = fit(_spec(epochs=1))
    with pytest.raises(CheckpointError, match="optimizer"):
        fit(_spec(epochs=2, optimizer={"lr": 0.01}), resume=first.last_checkpoint)


def test_a_diverging_learning_rate_stops_at_once_with_advice(mnist: Path) -> None:
    seen: list[EpochReport] = []
    with pytest.raises(Diverged) as info:
        fit(_spec(optimizer={"lr": 100.0, "momentum": 0.9}, epochs=5), on_epoch=seen.append)
    err = info.value
    assert seen == []  # never an epoch of NaN
    assert err.details["epoch"] == 1 and 1 <= err.details["batch"] <= 8
    assert (
        "learning rate 100 diverged at epoch 1" in err.message and "try a smaller lr" in err.message
    )
    assert err.to_dict()["type"] == "diverged"


def test_should_stop_cancels_between_batches(mnist: Path) -> None:
    result = fit(_spec(epochs=3), should_stop=lambda: True)
    assert result.cancelled and result.epochs == [] and result.test_accuracy is None
    assert result.evaluated is None


def test_on_epoch_can_stop_the_run(mnist: Path) -> None:
    result = fit(_spec(epochs=3), on_epoch=lambda r: r.metrics.epoch == 1)
    assert result.cancelled and [m.epoch for m in result.epochs] == [1]


def test_the_same_spec_trains_on_cifar10(data_dir: Path) -> None:
    write_cifar10(data_dir, n_train=300, n_test=50)
    result = fit(_spec(dataset="cifar10", val_size=50, epochs=1))
    assert result.best_checkpoint["dataset"]["shape"] == [3, 32, 32]
    assert result.test_accuracy is not None


@pytest.mark.slow
def test_real_fashion_mnist_reaches_75_percent(real_fashion_mnist: Path) -> None:
    spec = TrainSpec.model_validate(
        {
            "dataset": "fashion_mnist",
            "train_size": 4000,
            "val_size": 1000,
            "batch_size": 128,
            "epochs": 2,
            "optimizer": {"lr": 0.05, "momentum": 0.9},
        }
    )
    result = fit(spec)
    assert result.best_val_accuracy >= 0.75
    assert result.test_accuracy is not None and result.test_accuracy >= 0.75


def test_divergence_in_the_last_step_of_an_epoch_is_caught_before_it_is_reported(
    real_fashion_mnist: Path,
) -> None:
    """With lr 50 each batch's loss is finite but the epoch's last step leaves the weights
    non-finite: the epoch must not be reported with a NaN validation loss."""
    spec = TrainSpec.model_validate(
        {"dataset": "fashion_mnist", "train_size": 4096, "val_size": 1000, "batch_size": 1024,
         "epochs": 2, "optimizer": {"lr": 50.0}}
    )  # fmt: skip
    seen: list[EpochReport] = []
    with pytest.raises(Diverged) as info:
        fit(spec, on_epoch=seen.append)
    assert seen == []
    assert info.value.details["epoch"] == 1 and info.value.details["batch"] == 4
