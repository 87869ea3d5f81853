"""Searches: created with their first trials, then given new trials as earlier ones end (up to
``max_concurrent_trials`` at once), paused, resumed, retried and cancelled.

Trials beyond the concurrency limit wait inside the search, not in the queue: their rows are
added by :func:`advance_search` when there is room, which the worker calls after each trial ends
and the sweeper calls on every sweep (so a crash between the two loses nothing). A sampled
search's later trials are drawn then, from the scores recorded so far (TPE learns from them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import uploads_in_scope
from cnnlab.errors import CnnlabError
from cnnlab.lifecycle import quota
from cnnlab.lifecycle.admission import admit_trial
from cnnlab.lifecycle.cancel import request_cancel
from cnnlab.lifecycle.datasets import pin_base_dataset
from cnnlab.lifecycle.gpu import check_gpu_worker
from cnnlab.lifecycle.submit import Enqueue, send_after_commit
from cnnlab.lifecycle.transitions import lock_search, move, refresh_search
from cnnlab.lifecycle.views import RETRYABLE
from cnnlab.lifecycle.warm_start import pin_init
from cnnlab.lifecycle.winners import check_winner_name
from cnnlab.search.config import SearchConfig
from cnnlab.search.grid import GridPoint, expand
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import TrainSpec
from cnnlab.status import JobStatus, SearchStatus
from cnnlab.store.errors import Conflict
from cnnlab.store.retention import check_storage
from cnnlab.store.searches import get_search, trial_scores
from cnnlab.store.tables import EpochMetric, Job, Search, utcnow

_PAST_STATE = {
    JobStatus.succeeded: "complete",
    JobStatus.pruned: "pruned",
    JobStatus.queued: "running",
    JobStatus.running: "running",
}


def create_search(
    session: Session,
    owner_id: int,
    base: dict[str, Any],
    config: SearchConfig,
    settings: Settings,
    *,
    enqueue: Enqueue | None,
    max_active: int | None = None,
) -> Search:
    """Check the body, add the search and its first trials (sent after commit). Errors name the
    field: ``grid.<path>``, ``space.<path>``, ``base.<field>``, ``pruner.<field>``, …. The first
    trials count against ``max_active`` (:class:`TooManyActiveJobs`); later ones start as
    earlier ones end."""
    from cnnlab.search.body import check_body

    check_storage(session, owner_id, settings)  # 422 storage_quota when full
    base, uploads = pin_base_dataset(session, owner_id, base)
    with uploads_in_scope(uploads):
        body = check_body(base, settings, config)
    if body.points and body.points[0].spec.init is not None:
        # Every trial starts from the same version (pinned now), its model checked against each.
        body.points[:] = [replace(p, spec=pin_init(session, owner_id, p.spec)) for p in body.points]
        pinned = body.points[0].spec.init
        base = {
            **base,
            "init": pinned.model_dump(mode="json", exclude_none=True) if pinned else None,
        }
    check_gpu_worker(session, [p.spec.device for p in body.points], settings)  # no_gpu_worker
    register_best_as = check_winner_name(config.winner_json())
    first = body.points[: body.max_concurrent_trials]
    quota.reserve(session, owner_id, len(first), max_active)

    search = Search(
        owner_id=owner_id,
        base=base,
        grid=config.grid or {},
        space=config.space_json(),
        sampler=body.sampler,
        num_trials=len(body.points),
        seed=config.seed,
        pruner=config.pruner_json(),
        max_concurrent_trials=body.max_concurrent_trials,
        register_best_as=register_best_as,
        metric=body.metric,
        mode=body.mode,
    )
    session.add(search)
    session.flush()
    for index, point in enumerate(first):
        _add_trial(session, search, index, point, enqueue)
    return search


def _add_trial(
    session: Session, search: Search, index: int, point: GridPoint, enqueue: Enqueue | None
) -> Job:
    job = Job(
        owner_id=search.owner_id,
        spec=point.spec.model_dump(mode="json"),
        search_id=search.id,
        trial_index=index,
        params=point.params,
    )
    session.add(job)
    session.flush()
    send_after_commit(session, job.id, point.spec.device, enqueue)
    return job


def advance_search(
    session: Session,
    search_id: str,
    *,
    enqueue: Enqueue | None,
    settings: Settings | None = None,
) -> list[str]:
    """Add the search's next trials while it has room (fewer than ``max_concurrent_trials``
    queued or running, fewer than ``num_trials`` in all) and is neither paused nor stopping;
    the ids added. Safe to call from any process at any time (the search row is locked).

    Each drawn trial passes the check a job's spec passes (:mod:`cnnlab.lifecycle.admission`):
    one it refuses is added as a failed trial with that error, never queued (it is not redrawn:
    the draw is deterministic, and the search still ends with ``num_trials`` trials)."""
    settings = settings or get_settings()
    search = lock_search(session, search_id)
    if search.status.ended or search.paused or search.cancel_requested:
        return []
    trials = list(
        session.scalars(select(Job).where(Job.search_id == search_id).order_by(Job.trial_index))
    )
    total = search.num_trials or len(trials)
    active = sum(1 for t in trials if not t.status.ended)
    room = min((search.max_concurrent_trials or total) - active, total - len(trials))
    added: list[str] = []
    for index in range(len(trials), len(trials) + max(0, room)):
        try:
            point = _point(session, search, index, trials)
        except CnnlabError as exc:
            # A draw the spec refuses (a combination no single range reveals): the trial is
            # recorded as failed, so the search still ends with num_trials trials.
            trials.append(_failed_trial(session, search, index, exc))
            continue
        try:
            admit_trial(session, point, settings, "grid" if search.sampler == "grid" else "space")
        except CnnlabError as exc:
            # A valid draw past this server's limits (a budget, no GPU worker): failed with
            # its params, so the search's page shows what was refused.
            trials.append(_failed_trial(session, search, index, exc, point))
            continue
        job = _add_trial(session, search, index, point, enqueue)
        trials.append(job)
        added.append(job.id)
    refresh_search(session, search_id)
    return added


def advance_search_of(session: Session, job_id: str, *, enqueue: Enqueue | None) -> list[str]:
    """:func:`advance_search` for the job's search, if it is a trial."""
    search_id = session.scalar(select(Job.search_id).where(Job.id == job_id))
    return [] if search_id is None else advance_search(session, search_id, enqueue=enqueue)


def _point(session: Session, search: Search, index: int, trials: list[Job]) -> GridPoint:
    if search.sampler == "grid":
        return expand(search.base, search.grid)[index]
    from cnnlab.search.sampling import Past
    from cnnlab.search.space import parse_space
    from cnnlab.search.trials import next_point

    scores = trial_scores(session, search, trials)
    metric_curves = curves(session, search.metric, [t.id for t in trials])
    history = [
        Past(
            t.params or {},
            state=_PAST_STATE.get(t.status, "failed"),  # type: ignore[arg-type]
            value=scores.get(t.id),
            curve=metric_curves.get(t.id, ()),
        )
        for t in trials
    ]
    return next_point(
        search.base,
        parse_space(search.space, search.base),
        sampler=search.sampler,  # type: ignore[arg-type]
        seed=search.seed,
        index=index,
        num_trials=search.num_trials or index + 1,
        mode=search.mode,  # type: ignore[arg-type]
        history=history,
    )


def curves(session: Session, metric: str, job_ids: list[str]) -> dict[str, list[float]]:
    """Each trial's ``metric`` per epoch (epochs 1..n; NaN where none was recorded)."""
    column = getattr(EpochMetric, metric)
    rows = session.execute(
        select(EpochMetric.job_id, EpochMetric.epoch, column)
        .where(EpochMetric.job_id.in_(job_ids))
        .order_by(EpochMetric.job_id, EpochMetric.epoch)
    )
    curves: dict[str, list[float]] = {}
    for job_id, epoch, value in rows:
        curve = curves.setdefault(job_id, [])
        curve.extend([float("nan")] * (epoch - 1 - len(curve)))
        curve.append(float("nan") if value is None else float(value))
    return curves


def _failed_trial(
    session: Session,
    search: Search,
    index: int,
    exc: CnnlabError,
    point: GridPoint | None = None,
) -> Job:
    now = utcnow()
    job = Job(
        owner_id=search.owner_id,
        spec=dict(search.base) if point is None else point.spec.model_dump(mode="json"),
        search_id=search.id,
        trial_index=index,
        params={} if point is None else point.params,
        status=JobStatus.failed,
        error=exc.to_dict(),
        finished_at=now,
    )
    session.add(job)
    session.flush()
    return job


def pause_search(session: Session, owner_id: int, search_id: str) -> Search:
    """Start no new trial; the running ones go on. Pausing an ended search changes nothing."""
    get_search(session, owner_id, search_id)
    search = lock_search(session, search_id)
    if not search.status.ended:
        search.paused = True
        refresh_search(session, search_id)
    return search


def resume_search(
    session: Session, owner_id: int, search_id: str, *, enqueue: Enqueue | None
) -> Search:
    """Undo a pause: trials start again as there is room."""
    get_search(session, owner_id, search_id)
    search = lock_search(session, search_id)
    search.paused = False
    refresh_search(session, search_id)
    advance_search(session, search_id, enqueue=enqueue)
    return search


def retry_search(
    session: Session,
    owner_id: int,
    search_id: str,
    *,
    enqueue: Enqueue | None,
    settings: Settings | None = None,
) -> Search:
    """Run again the trials that failed or were cancelled (a lost worker's included), as new
    attempts of the same points, resuming from their last checkpoint; succeeded and pruned trials
    are kept and the best trial is chosen again once all have ended. Each passes the check of
    :mod:`cnnlab.lifecycle.admission` again (limits may have changed since): one it refuses stays
    as it is. :class:`Conflict` if there is nothing to retry, the check's error if it refuses
    every trial there was."""
    settings = settings or get_settings()
    get_search(session, owner_id, search_id)
    search = lock_search(session, search_id)
    rows = session.execute(
        select(Job.id, Job.spec, Job.params).where(
            Job.search_id == search_id, Job.status.in_(RETRYABLE)
        )
    )
    # A trial whose draw the spec refused has no point to run again.
    again, refused = [], []
    prefix = "grid" if search.sampler == "grid" else "space"
    for job_id, spec, params in rows:
        if not params:
            continue
        try:
            admit_trial(
                session, GridPoint(params, TrainSpec.model_validate(spec)), settings, prefix
            )
        except CnnlabError as exc:
            refused.append(exc)
            continue
        again.append((job_id, spec))
    if not again and refused:
        raise refused[0]
    if not again:
        raise Conflict(f"search {search_id!r} has no failed or cancelled trial to retry")
    search.cancel_requested = False
    search.finished_at = None
    session.flush()
    for job_id, spec in again:
        if move(
            session,
            job_id,
            JobStatus.queued,
            where=(Job.status.in_(RETRYABLE),),
            error=None,
            finished_at=None,
            test_accuracy=None,
            cancel_requested=False,
            lease_expires_at=None,
            enqueued_at=utcnow(),
        ):
            send_after_commit(session, job_id, str(spec.get("device", "auto")), enqueue)
    refresh_search(session, search_id)
    return search


def cancel_search(session: Session, owner_id: int, search_id: str) -> Search:
    """Cancel every trial (queued ones at once, running ones within an epoch); trials not yet
    started never will."""
    get_search(session, owner_id, search_id)
    search = lock_search(session, search_id)
    search.cancel_requested = True
    session.flush()
    for job_id in list(session.scalars(select(Job.id).where(Job.search_id == search.id))):
        request_cancel(session, job_id)
    refresh_search(session, search.id)
    return search


def live_searches(session: Session) -> list[str]:
    """Searches that may have room for a trial (for the sweeper's :func:`advance_search`)."""
    return list(
        session.scalars(
            select(Search.id).where(
                Search.status.in_((SearchStatus.queued, SearchStatus.running)),
                Search.cancel_requested.is_(False),
            )
        )
    )
