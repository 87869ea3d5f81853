"""Budgets: the figures estimated on the meta device, the limits they are held to, and the
training task's time limit that follows from them."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.datasets.catalog import get_meta
from cnnlab.errors import BudgetExceeded, SpecError
from cnnlab.settings import Settings
from cnnlab.spec.budget import (
    TIME_LIMIT_BASE_SECONDS,
    TIME_LIMIT_SECONDS_PER_STEP,
    Budget,
    check_budget,
    estimate_budget,
    time_limit_seconds,
)
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec

# The issue's spec: accepted before budgets, and far past every default limit.
HUGE = {
    "dataset": "cifar10",
    "model": {"arch": "cnn_deep", "channels": [1024] * 5},
    "batch_size": 4096,
    "epochs": 1000,
    "device": "cuda",
}

# Every spec the README, docs/ and the lab notebook use (the notebook: its CNN on MNIST, batch
# 1024, 10 epochs, grid over lr × batch size; then "repeat on CIFAR-10", with cnn_deep too).
DOCUMENTED: list[dict[str, Any]] = [
    {"dataset": "mnist"},
    {"dataset": "fashion_mnist", "val_size": 10000, "batch_size": 1024,
     "model": {"arch": "cnn", "channels": [16, 32]}, "optimizer": {"lr": 0.1}, "epochs": 10},
    {"dataset": "cifar10", "val_size": 10000, "batch_size": 1024,
     "model": {"arch": "cnn", "channels": [16, 32]}, "epochs": 10},
    {"dataset": "fashion_mnist", "epochs": 5, "batch_size": 256},
    {"dataset": "fashion_mnist", "epochs": 5, "batch_size": 512},
    {"dataset": "mnist", "batch_size": 1024, "epochs": 10, "optimizer": {"momentum": 0.9}},
    {"dataset": "cifar10", "model": {"arch": "cnn_deep", "channels": [64, 128, 256],
                                     "batch_norm": True}, "epochs": 10},
    {"dataset": "cifar10", "model": {"arch": "cnn_deep", "channels": [64, 128, 256],
                                     "batch_norm": True}, "epochs": 100},
    {"dataset": "cifar10", "epochs": 1000},  # the lab's CNN for as long as a spec allows
]  # fmt: skip


def _budget(doc: dict[str, Any]) -> Budget:
    spec = TrainSpec.model_validate(doc)
    return estimate_budget(spec, get_meta(spec.dataset).standard_sizes[0])


def test_the_notebook_cnn_s_figures_by_hand() -> None:
    b = _budget({"dataset": "mnist", "batch_size": 1024, "epochs": 10})
    # conv 1→16 (3×3, bias), conv 16→32, linear 32·7·7 → 10
    assert b.params == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 7 * 7 * 10 + 10) == 20_490
    conv1 = 2 * (16 * 28 * 28) * 9
    conv2 = 2 * (32 * 14 * 14) * (16 * 9)
    head = 2 * 10 * (32 * 7 * 7)
    assert b.flops_per_image == conv1 + conv2 + head
    # input; conv, pool, relu per block; flatten; linear
    values = 784 + (16 * 784 + 2 * 16 * 196) + (32 * 196 + 2 * 32 * 49) + 32 * 49 + 10
    assert b.activation_bytes == 4 * 1024 * values * 2
    assert (b.train_images, b.val_images) == (50_000, 10_000)
    assert b.job_tflops == pytest.approx(b.flops_per_image * 3 * 50_000 * 10 / 1e12)


@pytest.mark.parametrize("arch", ["cnn", "cnn_deep"])
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_flops_agree_with_torch_s_own_counter(arch: str, dataset: str) -> None:
    spec = TrainSpec.model_validate({"dataset": dataset, "model": {"arch": arch}})
    meta = get_meta(dataset)
    model = build_model(model_config(spec, meta)).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *meta.shape))
    assert _budget(spec.model_dump()).flops_per_image == counter.get_total_flops()
    assert _budget(spec.model_dump()).params == sum(p.numel() for p in model.parameters())


def test_the_issue_s_spec_is_refused_on_its_model_first() -> None:
    b = _budget(HUGE)
    assert 84e6 < b.params < 86e6  # "about 85 M parameters"
    assert 32e9 < b.flops_per_image < 33e9  # "32 GFLOP per image"
    defaults = Settings()
    assert b.activation_bytes > 10 * defaults.max_activation_bytes
    assert b.job_tflops > 100 * defaults.max_job_tflops
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(b, defaults)
    detail = caught.value.to_dict()
    assert detail["type"] == "budget_exceeded" and detail["field"] == "model.channels"
    assert (detail["figure"], detail["value"], detail["limit"]) == (
        "params",
        b.params,
        defaults.max_model_params,
    )
    assert detail["setting"] == "CNNLAB_MAX_MODEL_PARAMS"
    assert f"{b.params:,}" in detail["message"] and "10,000,000" in detail["message"]


@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda d: f"{d['dataset']}-{d.get('epochs')}")
def test_every_documented_spec_is_within_the_default_limits(doc: dict[str, Any]) -> None:
    check_budget(_budget(doc), Settings())


@pytest.mark.parametrize(
    ("limits", "field", "setting", "hint"),
    [
        ({"max_model_params": 20_000}, "model.channels", "CNNLAB_MAX_MODEL_PARAMS", "channels"),
        (
            {"max_activation_bytes": 2**20},
            "batch_size",
            "CNNLAB_MAX_ACTIVATION_BYTES",
            "batch_size of at most 4",
        ),
        ({"max_job_tflops": 1.0}, "epochs", "CNNLAB_MAX_JOB_TFLOPS", "at most 3 epochs"),
    ],
)
def test_each_limit_names_the_field_to_change(
    limits: dict[str, float], field: str, setting: str, hint: str
) -> None:
    b = _budget({"dataset": "mnist", "batch_size": 32, "epochs": 10})
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(b, Settings(**limits))
    detail = caught.value.to_dict()
    assert (detail["field"], detail["setting"]) == (field, setting)
    assert detail["value"] > detail["limit"] == next(iter(limits.values()))
    assert hint in detail["message"]


def test_a_model_that_cannot_take_the_images_is_still_a_spec_error() -> None:
    with pytest.raises(SpecError) as caught:
        _budget({"dataset": "mnist", "model": {"channels": [4] * 6}})
    assert caught.value.field == "model"


def test_the_time_limit_follows_from_the_figures() -> None:
    b = _budget({"dataset": "mnist", "batch_size": 1000, "epochs": 10})
    settings = Settings(min_throughput_gflops=5.0)
    flops = b.job_tflops * 1e12 + b.flops_per_image * b.val_images * b.epochs
    expected = TIME_LIMIT_BASE_SECONDS + TIME_LIMIT_SECONDS_PER_STEP * 50 * 10 + flops / 5e9
    assert b.steps == 500
    assert time_limit_seconds(b, settings) == pytest.approx(expected)
    assert time_limit_seconds(b, Settings(min_throughput_gflops=0)) is None
    # A bigger job gets more time: the limit grows with its epochs.
    longer = _budget({"dataset": "mnist", "batch_size": 1000, "epochs": 20})
    assert time_limit_seconds(longer, settings) > time_limit_seconds(b, settings)  # type: ignore[operator]
