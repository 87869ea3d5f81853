from __future__ import annotations

import pytest

from cnnlab.errors import SpecError
from cnnlab.search.grid import MAX_GRID_POINTS, expand

BASE = {"dataset": "mnist", "epochs": 2}


def test_the_labs_grid_in_a_stable_order() -> None:
    points = expand(BASE, {"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]})
    assert [p.params for p in points] == [
        {"optimizer.lr": 0.01, "batch_size": 256},
        {"optimizer.lr": 0.01, "batch_size": 512},
        {"optimizer.lr": 0.1, "batch_size": 256},
        {"optimizer.lr": 0.1, "batch_size": 512},
    ]
    assert points[3].spec.optimizer.lr == 0.1 and points[3].spec.batch_size == 512
    assert all(p.spec.epochs == 2 for p in points)


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"optimizer.learning_rate": [0.1]}, "grid.optimizer.learning_rate"),
        ({"batch_size.x": [1]}, "grid.batch_size.x"),
        ({"optimizer": [{}]}, "grid.optimizer"),
        ({"optimizer.lr": [0.1, -1]}, "grid.optimizer.lr"),
        ({"optimizer.lr": []}, "grid.optimizer.lr"),
        ({}, "grid"),
        ({"seed": list(range(9)), "epochs": list(range(1, 9))}, "grid"),
    ],
)
def test_bad_grids_name_the_path(grid: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        expand(BASE, grid)
    assert info.value.field == field


def test_bad_base_names_the_base_field() -> None:
    with pytest.raises(SpecError) as info:
        expand({"dataset": "mnist", "epochs": -1}, {"seed": [1]})
    assert info.value.field == "base.epochs"


def test_limit_is_documented_constant() -> None:
    assert MAX_GRID_POINTS >= 4
