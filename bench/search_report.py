"""The search benchmark's (:mod:`bench.search`) printed report."""

from __future__ import annotations

import statistics
from typing import Any

from bench.search_bodies import GRID_EPOCHS, WIDE_ASHA, WIDE_EPOCHS, WIDE_TRIALS
from bench.search_stats import SearchRun


def _tag(i: int, repeat: int) -> str:
    return f" (run {i}/{repeat})" if repeat > 1 else ""


def _brief(run: SearchRun) -> str:
    return (
        f"{run.wall_seconds:.1f} s, {run.trial_epochs} trial-epochs, {run.pruned} pruned, "
        f"best val_accuracy {_fmt(run.best_val_accuracy)}"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(result: dict[str, Any]) -> None:
    if "searches" in result:
        _report_rows(result)
    if "notebook" in result:
        _report_notebook(result["notebook"], result["repeat"])
    if "asha" in result:
        _report_asha(result["asha"], result["repeat"])


def _median_of(repeat: int) -> str:
    return f", median of {repeat}" if repeat > 1 else ""


def _report_notebook(part: dict[str, Any], repeat: int) -> None:
    print()
    print(
        f"the notebook's 2×2 grid, {GRID_EPOCHS} epochs: cnnlab search (cnnlab serve, "
        f"{part['serve_workers']} workers) against the same trials run otherwise"
        f"{_median_of(repeat)}"
    )
    print(f"  {'':<38}{'wall s':>8}{'search faster':>15}{'best val':>10}{'test acc':>10}")
    for key, label in part["labels"].items():
        fig = part["sides"][key]
        print(
            f"  {label:<38}{fig['wall_seconds']:>8.1f}{fig['speedup_of_reference']:>14.2f}x"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )
    raw = statistics.median(part["notebook_way_wall_seconds_every_model_tested"])
    print(f"  (the notebook's way with every model tested, as bench.reference does: {raw:.1f} s)")


def _report_asha(part: dict[str, Any], repeat: int) -> None:
    print()
    print(
        f"random + ASHA against a grid, {WIDE_TRIALS} trials × {WIDE_EPOCHS} epochs, "
        f"cnnlab serve with {part['serve_workers']} workers{_median_of(repeat)}"
    )
    print(f"  {'':<36}{'wall s':>8}{'epochs':>8}{'pruned':>8}{'best val':>10}{'test acc':>10}")
    for key, label in part["labels"].items():
        fig = part["sides"][key]
        print(
            f"  {label:<36}{fig['wall_seconds']:>8.1f}{fig['trial_epochs']:>8}{fig['pruned']:>8}"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )
    pruner = (
        f"min_epochs {WIDE_ASHA['min_epochs']}, reduction_factor {WIDE_ASHA['reduction_factor']}"
    )
    print(f"  ASHA ({pruner}) against the grid:")
    for key, v in part["verdicts"].items():
        behind = v["val_points_behind_grid"]
        print(
            f"    {part['labels'][key]}: {abs(behind):.2f} points "
            f"{'behind' if behind > 0 else 'ahead of'} its best val "
            f"(target ≤ 1 behind: {'met' if v['within_1_point'] else 'missed'}), "
            f"{100 * v['epochs_share']:.0f}% of its trial-epochs "
            f"(target ≤ 40%: {'met' if v['within_40_percent_epochs'] else 'missed'}), "
            f"{100 * v['wall_share']:.0f}% of its wall time"
        )


def _report_rows(result: dict[str, Any]) -> None:
    best_of = f", best of {result['repeat']}" if result["repeat"] > 1 else ""
    print()
    images = f"{result['train_images']:,}"
    print(f"searches through cnnlab serve, Fashion-MNIST {images} training images{best_of}")
    print(
        f"  {'search':<34}{'wall s':>8}{'speed-up':>10}  {'against':<16}"
        f"{'epochs':>7}{'pruned':>7}{'best val':>10}{'test acc':>10}"
    )
    searches = result["searches"]
    for key, label in result["labels"].items():
        fig = searches[key]
        against = "-" if fig["against"] == key else fig["against"]
        print(
            f"  {label:<34}{fig['wall_seconds']:>8.1f}{fig['speedup']:>9.2f}x  {against:<16}"
            f"{fig['trial_epochs']:>7}{fig['pruned']:>7}"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )
