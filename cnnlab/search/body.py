"""A search body checked and settled once, for creating the search and for planning it alike:
every error a body can have names its field, and every default is filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnlab.search.config import SearchConfig
from cnnlab.search.grid import GridPoint, check_point
from cnnlab.search.pruning import Rule
from cnnlab.search.trials import trial_points
from cnnlab.settings import Settings

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


def check_body(base: Mapping[str, Any], settings: Settings, config: SearchConfig) -> SearchBody:
    """The settled body, or the :class:`SpecError` naming its field (``grid.<path>``,
    ``space.<path>``, ``base.<field>``, ``pruner.<field>``, …); each trial is checked against
    this server's data, as a job's spec is."""
    metric = config.metric
    mode = default_mode(metric) if config.mode is None else config.mode
    points = trial_points(
        base,
        grid=config.grid,
        space=config.space_json(),
        sampler=config.sampler,
        num_trials=config.num_trials,
        seed=config.seed,
    )
    prefix = "grid" if config.grid is not None else "space"
    for point in points:
        check_point(point, settings, prefix)
    return SearchBody(
        points=points,
        sampler=config.sampler or ("grid" if config.grid is not None else "random"),
        metric=metric,
        mode=mode,
        pruner=config.pruner,
        max_concurrent_trials=min(
            config.max_concurrent_trials or DEFAULT_CONCURRENT_TRIALS, len(points)
        ),
    )
