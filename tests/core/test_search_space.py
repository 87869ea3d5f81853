from __future__ import annotations

from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from cnnlab.errors import SpecError
from cnnlab.search.space import MAX_PATHS, parse_space

BASE = {"dataset": "mnist", "epochs": 2}


def test_each_kind_becomes_its_optuna_distribution() -> None:
    space = parse_space(
        {
            "optimizer.lr": {"loguniform": [1e-4, 1]},
            "optimizer.momentum": {"uniform": [0, 0.9]},
            "batch_size": {"int": [32, 512], "log": True},
            "epochs": {"int": [1, 5]},
            "model.channels": {"choice": [[16], [16, 32]]},
        },
        BASE,
    )
    dists = space.distributions()
    assert dists["optimizer.lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert dists["optimizer.momentum"] == FloatDistribution(0.0, 0.9)
    assert dists["batch_size"] == IntDistribution(32, 512, log=True)
    assert dists["epochs"] == IntDistribution(1, 5)
    assert isinstance(dists["model.channels"], CategoricalDistribution)
    assert list(dists) == [
        "optimizer.lr",
        "optimizer.momentum",
        "batch_size",
        "epochs",
        "model.channels",
    ]


def test_choices_of_lists_travel_through_optuna_as_indices() -> None:
    space = parse_space({"model.channels": {"choice": [[16], [16, 32]]}}, BASE)
    assert space.to_optuna({"model.channels": [16, 32]}) == {"model.channels": 1}
    assert space.from_optuna({"model.channels": 1}) == {"model.channels": [16, 32]}
    assert space.to_optuna({"model.channels": [32]}) is None


def test_values_outside_a_range_are_not_of_the_space() -> None:
    space = parse_space({"optimizer.lr": {"uniform": [0.01, 0.1]}, "epochs": {"int": [1, 3]}}, BASE)
    assert space.to_optuna({"optimizer.lr": 0.05, "epochs": 2}) == {
        "optimizer.lr": 0.05,
        "epochs": 2,
    }
    assert space.to_optuna({"optimizer.lr": 0.5, "epochs": 2}) is None
    assert space.to_optuna({"optimizer.lr": 0.05, "epochs": 2.5}) is None
    assert space.to_optuna({"optimizer.lr": 0.05}) is None


def test_only_a_space_of_choices_is_a_grid() -> None:
    choices = parse_space({"batch_size": {"choice": [64, 128]}}, BASE)
    assert choices.as_grid() == {"batch_size": [64, 128]}
    assert parse_space({"batch_size": {"int": [64, 128]}}, BASE).as_grid() is None


@pytest.mark.parametrize(
    ("space", "field", "words"),
    [
        ({"optimizer.lr": {"uniform": [0.5, 0.1]}}, "space.optimizer.lr", "below"),
        ({"optimizer.lr": {"loguniform": [0.1, 0.1]}}, "space.optimizer.lr", "below"),
        ({"epochs": {"int": [5, 2]}}, "space.epochs", "below"),
        ({"optimizer.momentum": {"loguniform": [0, 0.5]}}, "space.optimizer.momentum", "low > 0"),
        ({"optimizer.lr": {"choice": []}}, "space.optimizer.lr", "non-empty"),
        ({"optimizer.lr": {"choice": [0.1, 0.1]}}, "space.optimizer.lr", "distinct"),
        (
            {"optimizer.learning_rate": {"uniform": [0, 1]}},
            "space.optimizer.learning_rate",
            "not a spec field",
        ),
        ({"optimizer": {"choice": [{"lr": 0.1}]}}, "space.optimizer", "group"),
        ({"batch_size.x": {"int": [1, 2]}}, "space.batch_size.x", "sub-fields"),
        ({"optimizer.lr": {"uniform": [-1, 1]}}, "space.optimizer.lr", "greater than 0"),
        ({"optimizer.lr": {"uniform": [0.1, 1000]}}, "space.optimizer.lr", "less than"),
        ({"model.dropout": {"uniform": [0, 1]}}, "space.model.dropout", "less than 1"),
        ({"optimizer.lr": {"choice": [[0.1]]}}, "space.optimizer.lr", "number"),
        ({"model.channels": {"choice": [16, 32]}}, "space.model.channels", "list"),
        ({"batch_size": {"uniform": [16, 512]}}, "space.batch_size", "integer"),
        ({"device": {"choice": ["cpu", "tpu"]}}, "space.device", "cpu"),
        ({"optimizer.lr": [0.01, 0.1]}, "space.optimizer.lr", "object"),
        ({"optimizer.lr": {"normal": [0, 1]}}, "space.optimizer.lr", "exactly one"),
        (
            {"optimizer.lr": {"uniform": [0.1, 1], "choice": [0.1]}},
            "space.optimizer.lr",
            "exactly one",
        ),
        ({"optimizer.lr": {"uniform": [0.1]}}, "space.optimizer.lr", "[low, high]"),
        ({"optimizer.lr": {"uniform": "0.1-1"}}, "space.optimizer.lr", "[low, high]"),
        ({"optimizer.lr": {"uniform": [0.1, float("inf")]}}, "space.optimizer.lr", "finite"),
        ({"epochs": {"int": [1.0, 3]}}, "space.epochs", "integer"),
        ({"epochs": {"int": [True, 3]}}, "space.epochs", "integer"),
        ({"epochs": {"int": [0, 3], "log": True}}, "space.epochs", "log"),
        ({"optimizer.lr": {"uniform": [0.1, 1], "log": True}}, "space.optimizer.lr", "log"),
        ({"epochs": {"int": [1, 3], "log": "yes"}}, "space.epochs", "log"),
        ({}, "space", "at least one"),
        ([["optimizer.lr", {"uniform": [0.1, 1]}]], "space", "at least one"),
        ({f"p{i}": {"choice": [1]} for i in range(MAX_PATHS + 1)}, "space", "at most"),
    ],
)
def test_hostile_spaces_name_the_field(space: Any, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_space(space, BASE)
    assert info.value.field == field
    assert words in info.value.message
    assert info.value.status_code == 422
    assert info.value.to_dict()["field"] == field


def test_a_value_refused_with_the_rest_of_the_spec_names_the_path() -> None:
    base = {"dataset": "mnist", "optimizer": {"momentum": 0.0}}
    with pytest.raises(SpecError) as info:
        parse_space({"optimizer.nesterov": {"choice": [False, True]}}, base)
    assert info.value.field == "space.optimizer.nesterov"
    assert "nesterov" in info.value.message


def test_a_bad_base_names_the_base_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_space({"optimizer.lr": {"uniform": [0.1, 1]}}, {"dataset": "mnist", "epochs": -1})
    assert info.value.field == "base.epochs"


def test_the_recipes_fields_are_searchable() -> None:
    space = parse_space(
        {
            "augment.crop": {"int": [0, 4]},
            "augment.flip": {"choice": [True, False]},
            "schedule.name": {"choice": ["cosine", "onecycle"]},
            "label_smoothing": {"uniform": [0.0, 0.2]},
            "early_stopping.patience": {"int": [2, 5]},
            "model.depth": {"int": [1, 3]},
        },
        {**BASE, "model": {"arch": "resnet"}},
    )
    assert list(space.distributions()) == [
        "augment.crop",
        "augment.flip",
        "schedule.name",
        "label_smoothing",
        "early_stopping.patience",
        "model.depth",
    ]


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ({"augment.crop": {"int": [0, 99]}}, "space.augment.crop"),
        ({"schedule.name": {"choice": ["cosine", "linear"]}}, "space.schedule.name"),
        ({"label_smoothing": {"uniform": [0.0, 1.5]}}, "space.label_smoothing"),
        ({"augment.nope": {"int": [0, 2]}}, "space.augment.nope"),
        ({"model.depth": {"int": [1, 2]}}, "space.model.depth"),  # cnn has no depth
    ],
)
def test_bad_spaces_over_the_recipe_name_the_path(space: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_space(space, BASE)
    assert info.value.field == field
