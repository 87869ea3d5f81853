"""What the search benchmark (:mod:`bench.search`) makes of its runs: each search's figures,
the fastest and the median of repeats, and the ASHA verdict."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

AGAINST = {
    "grid_1_worker": "grid_1_worker",
    "grid_2_workers": "grid_1_worker",
    "sampled_2_workers": "sampled_2_workers",
    "asha_2_workers": "sampled_2_workers",
}


@dataclass
class SearchRun:
    """One search, as measured: wall seconds from its POST to its end, and what it found."""

    wall_seconds: float
    status: str
    best_val_accuracy: float | None
    test_accuracy: float | None
    trials: int
    trial_epochs: int  # epochs trained, over all trials
    pruned: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(search: dict[str, Any], wall_seconds: float) -> SearchRun:
    """A ended search (``GET /v1/searches/{id}``'s answer) as a :class:`SearchRun`."""
    trials = search["trials"]
    accuracies = [t["val_accuracy"] for t in trials if t.get("val_accuracy") is not None]
    return SearchRun(
        wall_seconds=wall_seconds,
        status=search["status"],
        best_val_accuracy=max(accuracies, default=None),
        test_accuracy=search.get("test_accuracy"),
        trials=len(trials),
        trial_epochs=sum(t.get("epoch") or 0 for t in trials),
        pruned=sum(t["status"] == "pruned" for t in trials),
    )


def fastest(runs: list[SearchRun]) -> SearchRun:
    """The repeat least disturbed by other load on the machine."""
    return min(runs, key=lambda r: r.wall_seconds)


def figures(runs: dict[str, list[SearchRun]]) -> dict[str, dict[str, Any]]:
    """Each case's fastest run, every wall time, and its speed-up over its reference (the
    reference's wall seconds over its own)."""
    best = {key: fastest(found) for key, found in runs.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, run in best.items():
        against = best.get(AGAINST.get(key, key), run)
        out[key] = {
            **run.to_dict(),
            "all_wall_seconds": [r.wall_seconds for r in runs[key]],
            "against": AGAINST.get(key, key),
            "speedup": against.wall_seconds / run.wall_seconds,
        }
    return out


def median_run(runs: list[SearchRun]) -> SearchRun:
    """The run with the median wall time (the lower one of an even count)."""
    ordered = sorted(runs, key=lambda r: r.wall_seconds)
    return ordered[(len(ordered) - 1) // 2]


def medians(runs: dict[str, list[SearchRun]], reference: str) -> dict[str, dict[str, Any]]:
    """Each side's median wall time (``statistics.median``), the accuracies of its median run,
    every wall time, and ``reference``'s speed-up over it: its median wall over the reference's
    (how many times longer it took than the reference)."""
    walls = {key: statistics.median(r.wall_seconds for r in found) for key, found in runs.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, found in runs.items():
        out[key] = {
            **median_run(found).to_dict(),
            "wall_seconds": walls[key],
            "all_wall_seconds": [r.wall_seconds for r in found],
            "speedup_of_reference": walls[key] / walls[reference],
        }
    return out


def asha_verdict(asha: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    """Issue 10's target: ASHA's best within 1 point of the grid's, on ≤ 40% of its epochs."""
    points = 100 * ((asha["best_val_accuracy"] or 0.0) - (grid["best_val_accuracy"] or 0.0))
    share = asha["trial_epochs"] / grid["trial_epochs"]
    return {
        "val_points_behind_grid": -points,
        "epochs_share": share,
        "wall_share": asha["wall_seconds"] / grid["wall_seconds"],
        "within_1_point": points >= -1.0,
        "within_40_percent_epochs": share <= 0.40,
    }
