"""The search benchmark's arithmetic: what it reads from a search, and which ratio it prints."""

from __future__ import annotations

from typing import Any

import pytest

from bench import search_bodies, search_stats
from bench.search_stats import SearchRun


def _trial(status: str, epoch: int | None, val_accuracy: float | None) -> dict[str, Any]:
    return {"status": status, "epoch": epoch, "val_accuracy": val_accuracy}


def test_a_search_is_summarised_by_its_best_trial_and_the_epochs_it_trained() -> None:
    answer = {
        "status": "succeeded",
        "test_accuracy": 0.85,
        "trials": [
            _trial("succeeded", 4, 0.86),
            _trial("pruned", 1, 0.71),
            _trial("pruned", 2, 0.88),  # a pruned trial may still hold the best epoch
            _trial("cancelled", None, None),
        ],
    }
    run = search_stats.summarize(answer, 12.5)
    assert run == SearchRun(
        wall_seconds=12.5,
        status="succeeded",
        best_val_accuracy=0.88,
        test_accuracy=0.85,
        trials=4,
        trial_epochs=7,
        pruned=2,
    )


def test_each_case_is_its_fastest_repeat_against_its_reference() -> None:
    def run(seconds: float) -> SearchRun:
        return SearchRun(seconds, "succeeded", 0.8, 0.79, 4, 8, 0)

    figures = search_stats.figures(
        {
            "grid_1_worker": [run(40.0), run(44.0)],
            "grid_2_workers": [run(36.0), run(32.0)],
            "sampled_2_workers": [run(60.0)],
            "asha_2_workers": [run(30.0)],
        }
    )
    assert figures["grid_1_worker"]["speedup"] == 1.0
    assert figures["grid_1_worker"]["all_wall_seconds"] == [40.0, 44.0]
    assert figures["grid_2_workers"]["wall_seconds"] == 32.0
    assert figures["grid_2_workers"]["speedup"] == pytest.approx(40.0 / 32.0)
    assert figures["asha_2_workers"]["against"] == "sampled_2_workers"
    assert figures["asha_2_workers"]["speedup"] == pytest.approx(2.0)


def test_the_pruned_and_unpruned_searches_draw_the_same_trials() -> None:
    plain, pruned = search_bodies.sampled_body(None), search_bodies.sampled_body(search_bodies.ASHA)
    assert {k: v for k, v in plain.items() if k != "pruner"} == {
        k: v for k, v in pruned.items() if k != "pruner"
    }
    assert pruned["num_trials"] == search_bodies.SAMPLED_TRIALS
    assert search_bodies.grid_body()["grid"] == {
        "optimizer.lr": [0.01, 0.1],
        "batch_size": [256, 512],
    }


def test_the_notebook_comparison_is_the_median_of_each_side_against_the_search() -> None:
    def run(seconds: float, val: float) -> SearchRun:
        return SearchRun(seconds, "succeeded", val, 0.8, 4, 8, 0)

    sides = search_stats.medians(
        {
            "search": [run(30.0, 0.85), run(20.0, 0.84), run(25.0, 0.86)],
            "cnnlab_train": [run(60.0, 0.85), run(70.0, 0.85)],
        },
        "search",
    )
    assert sides["search"]["wall_seconds"] == 25.0
    assert sides["search"]["best_val_accuracy"] == 0.86  # the median run's accuracy
    assert sides["search"]["speedup_of_reference"] == 1.0
    assert sides["cnnlab_train"]["wall_seconds"] == 65.0
    assert sides["cnnlab_train"]["all_wall_seconds"] == [60.0, 70.0]
    assert sides["cnnlab_train"]["speedup_of_reference"] == pytest.approx(65.0 / 25.0)


def test_asha_is_judged_by_points_behind_the_grid_and_its_share_of_epochs() -> None:
    grid = {"best_val_accuracy": 0.880, "trial_epochs": 64, "wall_seconds": 400.0}
    close = {"best_val_accuracy": 0.872, "trial_epochs": 25, "wall_seconds": 160.0}
    verdict = search_stats.asha_verdict(close, grid)
    assert verdict["val_points_behind_grid"] == pytest.approx(0.8)
    assert verdict["epochs_share"] == pytest.approx(25 / 64)
    assert verdict["wall_share"] == pytest.approx(0.4)
    assert verdict["within_1_point"] and verdict["within_40_percent_epochs"]
    far = {"best_val_accuracy": 0.86, "trial_epochs": 30, "wall_seconds": 200.0}
    verdict = search_stats.asha_verdict(far, grid)
    assert not verdict["within_1_point"] and not verdict["within_40_percent_epochs"]


def test_the_asha_search_and_its_grid_span_the_same_ranges_and_epochs() -> None:
    grid, asha = search_bodies.wide_grid_body(), search_bodies.wide_asha_body()
    assert grid["base"] == asha["base"]
    assert asha["num_trials"] == len(grid["grid"]["optimizer.lr"]) * len(
        grid["grid"]["optimizer.momentum"]
    )
    for path, values in grid["grid"].items():
        low, high = next(iter(asha["space"][path].values()))
        assert (low, high) == (min(values), max(values))
    assert asha["pruner"]["name"] == "asha"


def test_the_train_side_runs_the_grids_points() -> None:
    specs = [search_bodies.train_spec(lr, bs) for lr, bs in search_bodies.grid_points()]
    assert [(s["optimizer"]["lr"], s["batch_size"]) for s in specs] == [
        (0.01, 256), (0.01, 512), (0.1, 256), (0.1, 512)
    ]  # fmt: skip
    assert all(s["epochs"] == search_bodies.GRID_EPOCHS for s in specs)
