"""A search body checked and settled once, for creating the search and for planning it alike:
every error a body can have names its field, and every default is filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import BudgetExceeded, SpecError
from cnnlab.search.grid import GridPoint
from cnnlab.search.pruning import Rule, parse_pruner
from cnnlab.search.trials import trial_points
from cnnlab.settings import Settings
from cnnlab.spec.validate import validate_spec

# What a search may rank trials by, always on validation data, and which way.
METRICS = ("val_accuracy", "val_loss")
MODES = ("max", "min")
# Trials queued or running at once when a body does not say: a 64-trial search must fit the
# default active-job limit (20) of its owner.
DEFAULT_CONCURRENT_TRIALS = 8


@dataclass(frozen=True)
class SearchBody:
    points: list[GridPoint]  # every trial of a grid or random search; a TPE search's first draws
    sampler: str
    metric: str
    mode: str
    pruner: Rule | None
    max_concurrent_trials: int


def default_mode(metric: str) -> str:
    """What ``mode`` a metric ranks by when the body leaves it out."""
    return "min" if metric == "val_loss" else "max"


def check_body(
    base: Mapping[str, Any],
    settings: Settings,
    *,
    grid: Any = None,
    space: Any = None,
    sampler: Any = None,
    num_trials: Any = None,
    seed: Any = 0,
    pruner: Any = None,
    max_concurrent_trials: Any = None,
    metric: Any = "val_accuracy",
    mode: Any = None,
) -> SearchBody:
    """The settled body, or the :class:`SpecError` naming its field (``grid.<path>``,
    ``space.<path>``, ``base.<field>``, ``pruner.<field>``, …); each trial is checked against
    this server's data, as a job's spec is."""
    if metric not in METRICS:
        raise SpecError("metric", f"{metric!r} is not one of {list(METRICS)}")
    mode = default_mode(metric) if mode is None else mode
    if mode not in MODES:
        raise SpecError("mode", f"{mode!r} is not one of {list(MODES)}")
    rule = parse_pruner(pruner)
    points = trial_points(
        base, grid=grid, space=space, sampler=sampler, num_trials=num_trials, seed=seed
    )
    prefix = "grid" if grid is not None else "space"
    for point in points:
        check_point(point, settings, prefix)
    return SearchBody(
        points=points,
        sampler=sampler or ("grid" if grid is not None else "random"),
        metric=metric,
        mode=mode,
        pruner=rule,
        max_concurrent_trials=_concurrency(max_concurrent_trials, len(points)),
    )


def check_point(point: GridPoint, settings: Settings, prefix: str) -> None:
    """:func:`~cnnlab.spec.validate.validate_spec` of one trial, its error naming
    ``<prefix>.<path>`` (``grid`` or ``space``) when a param of the point is at fault and
    ``base.<field>`` otherwise."""
    try:
        validate_spec(point.spec, settings)
    except SpecError as exc:
        where = prefix if exc.field in point.params else "base"
        raise SpecError(f"{where}.{exc.field}", exc.message.split(": ", 1)[-1]) from None
    except BudgetExceeded as exc:
        where = prefix if exc.field in point.params else "base"
        exc.field = exc.details["field"] = f"{where}.{exc.field}"
        exc.message = f"{where}.{exc.message}"
        raise


def _concurrency(value: Any, total: int) -> int:
    if value is None:
        return min(total, DEFAULT_CONCURRENT_TRIALS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("max_concurrent_trials", "must be a whole number ≥ 1")
    return min(value, total)
