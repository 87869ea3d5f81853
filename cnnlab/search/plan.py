"""A search body's plan: the trials it would run and what they could cost, checked as creating the
search would check it, with nothing created. The speeds come from this server's own records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.search.body import check_body
from cnnlab.search.config import SearchConfig
from cnnlab.search.estimate import Estimate, Speed, default_speed, estimate
from cnnlab.search.sampling import tpe_startup_trials
from cnnlab.search.space import SearchSpace, parse_space, validate_base
from cnnlab.settings import Settings
from cnnlab.spec.budget import train_split_size
from cnnlab.spec.train import TrainSpec
from cnnlab.store.searches import recent_throughput

# Recorded epochs the measured speed is the median of.
THROUGHPUT_EPOCHS = 50


@dataclass(frozen=True)
class SearchPlan:
    sampler: str
    num_trials: int
    metric: str
    mode: str
    pruner: dict[str, Any] | None
    max_concurrent_trials: int
    estimate: Estimate
    notes: list[str]


def _speeds(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Speed]:
    speeds = {}
    for dataset, device in sorted(keys):
        measured = recent_throughput(session, dataset, device, last=THROUGHPUT_EPOCHS)
        if measured.median_images_per_second is None:
            speeds[dataset, device] = default_speed(dataset, device)
        else:
            speeds[dataset, device] = Speed(
                dataset, device, measured.median_images_per_second, "measured", measured.epochs
            )
    return speeds


def plan_search(
    session: Session, settings: Settings, base: Mapping[str, Any], config: SearchConfig
) -> SearchPlan:
    """The plan of a search body, or the :class:`SpecError` (naming the field) or
    :class:`DatasetUnavailable` that creating it would raise. Reads the database, writes
    nothing."""
    body = check_body(base, settings, config)
    points, concurrency = body.points, body.max_concurrent_trials
    kind = body.sampler
    known = len(points)
    if kind == "tpe":
        # The search starts with its first max_concurrent_trials draws (as planned here) and
        # its random start; every later TPE draw follows the scores recorded by then.
        known = min(len(points), max(tpe_startup_trials(len(points)), concurrency))

    base_spec: TrainSpec = validate_base(base)
    space = config.space_json()
    parsed: SearchSpace | None = parse_space(space, base) if space is not None else None
    datasets = {p.spec.dataset for p in points} | {base_spec.dataset}
    splits = {name: train_split_size(name, settings) for name in sorted(datasets)}
    keys: set[tuple[str, str]] = {(p.spec.dataset, str(p.spec.device)) for p in points}
    keys.add((base_spec.dataset, str(base_spec.device)))
    result = estimate(
        points,
        train_splits=splits,
        speeds=_speeds(session, keys),
        known=known,
        space=parsed,
        base=base_spec,
    )
    return SearchPlan(
        sampler=kind,
        num_trials=len(points),
        metric=body.metric,
        mode=body.mode,
        pruner=config.pruner_json(),
        max_concurrent_trials=concurrency,
        estimate=result,
        notes=_notes(kind, known, len(points), body.pruner is not None),
    )


def _notes(sampler: str, known: int, total: int, pruned: bool) -> list[str]:
    notes = [
        "seconds: every trial's epochs one after another at the stated speed (epoch time "
        "only, not start-up); trials share this server's workers, so with several workers "
        "running trials at once the wall time is shorter"
    ]
    if sampler == "tpe" and known < total:
        notes.append(
            f"trials {known} to {total - 1} are drawn by TPE from the scores of earlier ones, "
            "so their params are not known yet; they count at the most they could cost"
        )
    if pruned:
        notes.append("the pruner may stop trials early: the epochs and images are the most")
    return notes
