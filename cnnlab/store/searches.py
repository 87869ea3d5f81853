"""Grid searches: one trial job per grid point, and the search's status and best trial."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cnnlab.errors import SpecError
from cnnlab.settings import Settings
from cnnlab.status import ENDED
from cnnlab.store import quota
from cnnlab.store.errors import NotFound
from cnnlab.store.jobs import request_cancel
from cnnlab.store.models import EpochMetric, Job, JobStatus, Search, utcnow
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.queue import enqueue_after_commit

# What a search may rank trials by, always on validation data.
METRICS = ("val_accuracy", "val_loss")
MODES = ("max", "min")


def create_search(
    session: Session,
    owner_id: int,
    base: dict[str, Any],
    grid: dict[str, list[Any]],
    settings: Settings,
    *,
    metric: str = "val_accuracy",
    mode: str = "max",
    max_active: int | None = None,
) -> Search:
    """Expand and validate the grid, add the search and its trials; they are enqueued after
    commit. Errors name ``grid.<path>`` for a grid value and ``base.<field>`` otherwise. Each
    trial counts against ``max_active`` (:class:`TooManyActiveJobs`)."""
    from cnnlab.grid import expand
    from cnnlab.validate import validate_spec

    if metric not in METRICS:
        raise SpecError("metric", f"{metric!r} is not one of {list(METRICS)}")
    if mode not in MODES:
        raise SpecError("mode", f"{mode!r} is not one of {list(MODES)}")
    points = expand(base, grid)
    for point in points:
        try:
            validate_spec(point.spec, settings)
        except SpecError as exc:
            prefix = "grid" if exc.field in point.params else "base"
            raise SpecError(f"{prefix}.{exc.field}", exc.message.split(": ", 1)[-1]) from None
    quota.reserve(session, owner_id, len(points), max_active)

    search = Search(owner_id=owner_id, base=base, grid=grid, metric=metric, mode=mode)
    session.add(search)
    session.flush()
    for index, point in enumerate(points):
        job = Job(
            owner_id=owner_id,
            spec=point.spec.model_dump(mode="json"),
            search_id=search.id,
            trial_index=index,
            params=point.params,
        )
        session.add(job)
        session.flush()
        enqueue_after_commit(session, job.id, point.spec.device)
    return search


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


def cancel_search(session: Session, owner_id: int, search_id: str) -> Search:
    """Cancel every trial (queued ones at once, running ones within an epoch)."""
    get_search(session, owner_id, search_id)
    search = lock_search(session, search_id)
    search.cancel_requested = True
    session.flush()
    for job_id in session.scalars(select(Job.id).where(Job.search_id == search.id)):
        request_cancel(session, job_id)
    refresh_search(session, search.id)
    return search


def lock_search(session: Session, search_id: str) -> Search:
    """Lock the search row (``FOR UPDATE``; SQLite serialises writers anyway).

    Every writer of a search's trials takes this lock before it writes a trial, so two trials
    ending at once cannot each read the other as still running, and locks are always taken in
    the same order (search, then jobs).
    """
    stmt = select(Search).where(Search.id == search_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def refresh_search(session: Session, search_id: str) -> None:
    """Recompute the search's status from its trials and, once all ended, its best trial."""
    search = lock_search(session, search_id)
    trials = list(
        session.scalars(
            select(Job).where(Job.search_id == search_id).execution_options(populate_existing=True)
        )
    )
    statuses = [t.status for t in trials]
    if not all(s in ENDED for s in statuses):
        started = any(s is not JobStatus.queued for s in statuses)
        search.status = JobStatus.running if started else JobStatus.queued
        search.best_job_id = None
        search.finished_at = None
        return
    best = _best_trial(session, search, trials)
    search.best_job_id = best.id if best is not None else None
    if search.cancel_requested or all(s is JobStatus.cancelled for s in statuses):
        search.status = JobStatus.cancelled
    elif any(s is JobStatus.succeeded for s in statuses):
        search.status = JobStatus.succeeded
    else:
        search.status = JobStatus.failed
    search.finished_at = search.finished_at or utcnow()


def trial_scores(session: Session, search: Search, trials: list[Job]) -> dict[str, float | None]:
    """Each trial's value of the search's metric, on validation data (None before an epoch)."""
    if search.metric == "val_accuracy":
        return {t.id: t.best_val_accuracy for t in trials}
    rows = session.execute(
        select(EpochMetric.job_id, func.min(EpochMetric.val_loss))
        .where(EpochMetric.job_id.in_([t.id for t in trials]))
        .group_by(EpochMetric.job_id)
    )
    best_loss: dict[str, float | None] = {t.id: None for t in trials}
    best_loss.update({job_id: loss for job_id, loss in rows})
    return best_loss


def _best_trial(session: Session, search: Search, trials: list[Job]) -> Job | None:
    """The succeeded trial with the best validation score; ties go to the earlier trial."""
    scores = trial_scores(session, search, trials)
    candidates = [t for t in trials if t.status is JobStatus.succeeded and scores[t.id] is not None]
    if not candidates:
        return None
    sign = 1.0 if search.mode == "max" else -1.0
    return max(candidates, key=lambda t: (sign * float(scores[t.id] or 0.0), -(t.trial_index or 0)))


def trials_with_scores(
    session: Session, search: Search
) -> tuple[list[Job], dict[str, float | None]]:
    """The search's trials in grid order, and each one's score on the search's metric."""
    trials = list(
        session.scalars(select(Job).where(Job.search_id == search.id).order_by(Job.trial_index))
    )
    return trials, trial_scores(session, search, trials)
