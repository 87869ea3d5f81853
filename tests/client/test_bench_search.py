"""The search benchmark's arithmetic: what it reads from a search, and which ratio it prints."""

from __future__ import annotations

from typing import Any

import pytest

from bench import search
from bench.search import SearchRun


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
    run = search.summarize(answer, 12.5)
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

    figures = search.figures(
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
    plain, pruned = search.sampled_body(None), search.sampled_body(search.ASHA)
    assert {k: v for k, v in plain.items() if k != "pruner"} == {
        k: v for k, v in pruned.items() if k != "pruner"
    }
    assert pruned["num_trials"] == search.SAMPLED_TRIALS
    assert search.grid_body()["grid"] == {"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}
