"""Reading searches: their trials, each trial's metrics and score, the best trial, and this
server's measured training speed. Status changes are :mod:`cnnlab.lifecycle`'s."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cnnlab.store.errors import NotFound
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.tables import EpochMetric, Job, Search

# Trials that may be a search's best: finished ones, and pruned ones (their metrics are real,
# if cut short) when no finished trial beats them.


@dataclass(frozen=True)
class TrialStats:
    """One trial's recorded epochs, aggregated: how many, the best of each validation metric,
    and the training time they took (the sum of the epochs' seconds)."""

    epochs: int = 0
    best_val_accuracy: float | None = None
    best_val_loss: float | None = None
    seconds: float = 0.0


def get_search(session: Session, owner_id: int, search_id: str) -> Search:
    search = session.scalar(
        select(Search).where(Search.id == search_id, Search.owner_id == owner_id)
    )
    if search is None:
        raise NotFound("search", search_id)
    return search


def list_searches(
    session: Session, owner_id: int, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Search]:
    stmt = select(Search).where(Search.owner_id == owner_id)
    return paginate(session, stmt, Search.created_at, Search.id, limit=limit, cursor=cursor)


def search_trials(session: Session, search: Search) -> list[Job]:
    """The search's trials in trial order."""
    return list(
        session.scalars(select(Job).where(Job.search_id == search.id).order_by(Job.trial_index))
    )


def trial_stats(session: Session, trials: Sequence[Job]) -> dict[str, TrialStats]:
    """Every trial's :class:`TrialStats`, in one aggregate query over the metric rows."""
    stats = {t.id: TrialStats() for t in trials}
    if not stats:
        return stats
    rows = session.execute(
        select(
            EpochMetric.job_id,
            func.count(EpochMetric.id),
            func.max(EpochMetric.val_accuracy),
            func.min(EpochMetric.val_loss),
            func.sum(EpochMetric.seconds),
        )
        .where(EpochMetric.job_id.in_(list(stats)))
        .group_by(EpochMetric.job_id)
    )
    for job_id, count, accuracy, loss, seconds in rows:
        stats[job_id] = TrialStats(int(count), accuracy, loss, float(seconds or 0.0))
    return stats


def scores_from(
    search: Search, trials: Sequence[Job], stats: dict[str, TrialStats]
) -> dict[str, float | None]:
    """Each trial's value of the search's metric (its best so far), from its stats."""
    if search.metric == "val_accuracy":
        return {t.id: t.best_val_accuracy for t in trials}
    return {t.id: stats[t.id].best_val_loss if t.id in stats else None for t in trials}


def trial_scores(session: Session, search: Search, trials: list[Job]) -> dict[str, float | None]:
    """Each trial's value of the search's metric, on validation data (None before an epoch)."""
    if search.metric == "val_accuracy":
        return {t.id: t.best_val_accuracy for t in trials}
    return scores_from(search, trials, trial_stats(session, trials))


def trials_with_scores(
    session: Session, search: Search
) -> tuple[list[Job], dict[str, float | None]]:
    """The search's trials in trial order, and each one's score on the search's metric."""
    trials = search_trials(session, search)
    return trials, trial_scores(session, search, trials)


def trials_with_stats(
    session: Session, search: Search
) -> tuple[list[Job], dict[str, float | None], dict[str, TrialStats]]:
    """The search's trials in order, their scores and their stats: two queries in all."""
    trials = search_trials(session, search)
    stats = trial_stats(session, trials)
    return trials, scores_from(search, trials, stats), stats


@dataclass(frozen=True)
class Throughput:
    """Training speed measured on this server: the median ``images_per_second`` of the last
    ``epochs`` epochs (at most the number asked for) of jobs on one dataset and device."""

    dataset: str
    device: str
    epochs: int
    median_images_per_second: float | None


def recent_throughput(session: Session, dataset: str, device: str, *, last: int = 50) -> Throughput:
    """The median training speed of the newest ``last`` recorded epochs of any job on this
    server whose spec names ``dataset`` and ``device`` (as written: ``auto`` matches ``auto``,
    which runs where this server's workers put it)."""
    rows = session.scalars(
        select(EpochMetric.images_per_second)
        .join(Job, Job.id == EpochMetric.job_id)
        .where(
            Job.spec["dataset"].as_string() == dataset,
            Job.spec["device"].as_string() == device,
            EpochMetric.images_per_second.is_not(None),
            EpochMetric.images_per_second > 0,
        )
        .order_by(EpochMetric.created_at.desc(), EpochMetric.id.desc())
        .limit(last)
    ).all()
    speeds = [float(r) for r in rows if r is not None]
    median = statistics.median(speeds) if speeds else None
    return Throughput(dataset, device, len(speeds), median)
