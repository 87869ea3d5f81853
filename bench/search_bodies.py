"""The bodies the search benchmark submits (:mod:`bench.search`): the notebook's grid, sampled
searches with and without ASHA, and the wide grid and space of the ASHA comparison."""

from __future__ import annotations

from typing import Any

from bench.reference import VAL_SIZE

GRID_EPOCHS = 2
GRID_LRS, GRID_BATCH_SIZES = [0.01, 0.1], [256, 512]
GRID = {"optimizer.lr": GRID_LRS, "batch_size": GRID_BATCH_SIZES}  # the notebook's grid
SAMPLED_TRIALS, SAMPLED_EPOCHS = 4, 4
SPACE = {"optimizer.lr": {"loguniform": [0.01, 0.3]}, "batch_size": {"choice": [256, 512]}}
ASHA = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
SEED = 0
# Issue 10's second comparison: random + ASHA against a grid over the same ranges, 4 epochs.
WIDE_EPOCHS, WIDE_BATCH, WIDE_TRIALS = 4, 512, 16
WIDE_GRID = {"optimizer.lr": [0.01, 0.03, 0.1, 0.3], "optimizer.momentum": [0.0, 0.3, 0.6, 0.9]}
WIDE_SPACE = {
    "optimizer.lr": {"loguniform": [0.01, 0.3]},
    "optimizer.momentum": {"uniform": [0.0, 0.9]},
}
# One rung (epoch 1; the next would be epoch 8): the best 1/8 there train all 4 epochs. With 16
# trials, 16 first epochs + 3 × (trials promoted) must stay ≤ 40% of the grid's 64.
WIDE_ASHA = {"name": "asha", "min_epochs": 1, "reduction_factor": 8}
WIDE_SEEDS = (SEED, 1)  # the ASHA search's sampler seeds, each measured against the same grid
PARTS = ("rows", "notebook", "asha")
SEARCH_TIMEOUT_S = 1800.0
# The service's environment for a benchmark: its load must not be answered 429.
SERVICE_ENV = {"PYTHONUNBUFFERED": "1", "CNNLAB_RATE_LIMIT_PER_MINUTE": "0"}


def base_spec(epochs: int) -> dict[str, Any]:
    return {"dataset": "fashion_mnist", "val_size": VAL_SIZE, "epochs": epochs}


def grid_body() -> dict[str, Any]:
    """The notebook's grid as a search: lr [0.01, 0.1] × batch size [256, 512], 2 epochs."""
    return {"base": base_spec(GRID_EPOCHS), "grid": GRID}


def sampled_body(pruner: dict[str, Any] | None) -> dict[str, Any]:
    """4 random trials over lr and batch size, 4 epochs each; the same trials whatever the
    pruner (the same seed)."""
    return {
        "base": base_spec(SAMPLED_EPOCHS),
        "space": SPACE,
        "sampler": "random",
        "num_trials": SAMPLED_TRIALS,
        "seed": SEED,
        "pruner": pruner,
    }


def wide_grid_body() -> dict[str, Any]:
    """16 points: lr 4 values × momentum 4 values, 4 epochs each."""
    return {"base": {**base_spec(WIDE_EPOCHS), "batch_size": WIDE_BATCH}, "grid": WIDE_GRID}


def wide_asha_body(seed: int = SEED) -> dict[str, Any]:
    """16 random trials over the grid's ranges, 4 epochs at most, pruned by ASHA."""
    return {
        "base": {**base_spec(WIDE_EPOCHS), "batch_size": WIDE_BATCH},
        "space": WIDE_SPACE,
        "sampler": "random",
        "num_trials": WIDE_TRIALS,
        "seed": seed,
        "pruner": WIDE_ASHA,
    }


def grid_points() -> list[tuple[float, int]]:
    """The notebook's grid as (lr, batch size) points, in the notebook's order."""
    return [(lr, bs) for lr in GRID_LRS for bs in GRID_BATCH_SIZES]


def train_spec(lr: float, batch_size: int) -> dict[str, Any]:
    """One point of the notebook's grid as a ``cnnlab train`` spec: what the search's trial for
    that point trains."""
    return {**base_spec(GRID_EPOCHS), "optimizer": {"lr": lr}, "batch_size": batch_size}


# (key, label, workers, body): the searches, in the order one repeat runs them.
CASES: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("grid_1_worker", "2×2 grid, 2 epochs, --workers 1", 1, grid_body()),
    ("grid_2_workers", "2×2 grid, 2 epochs, --workers 2", 2, grid_body()),
    ("sampled_2_workers", "4 random × 4 epochs, --workers 2", 2, sampled_body(None)),
    ("asha_2_workers", "the same with ASHA, --workers 2", 2, sampled_body(ASHA)),
)
# Each row's reference, measured in the same run.
