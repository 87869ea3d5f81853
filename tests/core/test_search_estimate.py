"""A search's cost before it runs: epochs, training images and seconds at a stated speed."""

from __future__ import annotations

from typing import Any

import pytest

from cnnlab.search.estimate import (
    CUDA_SPEEDUP,
    Speed,
    default_speed,
    estimate,
    train_images,
    worst_case,
)
from cnnlab.search.grid import GridPoint, expand
from cnnlab.search.space import parse_space
from cnnlab.spec.train import TrainSpec

BASE: dict[str, Any] = {"dataset": "mnist", "val_size": 10_000, "epochs": 2, "device": "cpu"}
SPLITS = {"mnist": 60_000}
MEASURED = {("mnist", "cpu"): Speed("mnist", "cpu", 5000.0, "measured", epochs=7)}


def spec(**fields: Any) -> TrainSpec:
    return TrainSpec.model_validate({**BASE, **fields})


def test_training_images_follow_val_size_and_train_size() -> None:
    assert train_images(spec(), 60_000) == 50_000
    assert train_images(spec(val_size=0.25), 60_000) == 45_000
    assert train_images(spec(train_size=1000), 60_000) == 1000
    # A bound that asks for more than the split has is held to what the split leaves.
    unchecked = spec().model_copy(update={"train_size": 10**9})
    assert train_images(unchecked, 60_000) == 50_000


def test_a_grid_costs_every_point_at_the_stated_speed() -> None:
    points = expand(BASE, {"epochs": [1, 3], "train_size": [1000, 5000]})
    result = estimate(points, train_splits=SPLITS, speeds=MEASURED)
    assert [(t.epochs, t.train_images) for t in result.trials] == [
        (1, 1000),
        (1, 5000),
        (3, 1000),
        (3, 5000),
    ]
    assert result.max_epochs == 8
    assert result.max_images == 1000 + 5000 + 3000 + 15000
    assert result.seconds == pytest.approx(result.max_images / 5000.0)
    assert result.speeds == [MEASURED["mnist", "cpu"]]
    assert not any(t.depends_on_scores for t in result.trials)
    assert "median of the last 7 epoch(s)" in result.speeds[0].describe()


def test_trials_not_drawn_yet_cost_the_most_the_space_allows() -> None:
    space = parse_space(
        {
            "epochs": {"int": [1, 4]},
            "train_size": {"choice": [2000, 500]},
            "optimizer.lr": {"loguniform": [0.001, 0.1]},
        },
        BASE,
    )
    base = spec()
    bound = worst_case(base, space, 60_000)
    assert bound.epochs == 4 and bound.train_size == 2000
    drawn = [GridPoint({"epochs": 1}, spec(epochs=1, train_size=500)) for _ in range(3)]
    result = estimate(drawn, train_splits=SPLITS, speeds=MEASURED, known=1, space=space, base=base)
    first, *later = result.trials
    assert first.params == {"epochs": 1} and (first.epochs, first.train_images) == (1, 500)
    assert all(t.params is None and t.depends_on_scores for t in later)
    assert all((t.epochs, t.train_images) == (4, 2000) for t in later)


def test_a_smaller_validation_set_is_the_costlier_bound() -> None:
    space = parse_space({"val_size": {"uniform": [0.1, 0.5]}}, BASE)
    assert worst_case(spec(), space, 60_000).val_size == pytest.approx(0.1)


def test_default_speeds_are_stated_as_defaults() -> None:
    cpu = default_speed("cifar10", "cpu")
    assert cpu.source == "default" and cpu.epochs == 0
    assert default_speed("cifar10", "cuda").images_per_second == pytest.approx(
        cpu.images_per_second * CUDA_SPEEDUP
    )
    assert default_speed("mnist", "auto").images_per_second > cpu.images_per_second
    assert "default" in cpu.describe()
