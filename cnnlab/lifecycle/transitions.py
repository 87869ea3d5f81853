"""The one helper that moves a job between statuses, and the search status that follows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from cnnlab.lifecycle.ranking import best_trial
from cnnlab.lifecycle.views import job_view, search_view
from cnnlab.lifecycle.winners import register_winner
from cnnlab.status import ENDED, JobStatus, SearchStatus
from cnnlab.store.job_inputs import drop_input
from cnnlab.store.tables import Job, Search, utcnow
from cnnlab.webhooks import outbox

# Which statuses a job may move to each status from (the table in this package's docstring).
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.running: frozenset({JobStatus.queued, JobStatus.running}),
    JobStatus.queued: frozenset({JobStatus.running, JobStatus.failed, JobStatus.cancelled}),
    JobStatus.succeeded: frozenset({JobStatus.running}),
    JobStatus.failed: frozenset({JobStatus.queued, JobStatus.running}),
    JobStatus.cancelled: frozenset({JobStatus.queued, JobStatus.running}),
    JobStatus.pruned: frozenset({JobStatus.running}),
}


def move(
    session: Session,
    job_id: str,
    to: JobStatus,
    *,
    where: tuple[ColumnElement[bool], ...] = (),
    **values: Any,
) -> bool:
    """Move the job to ``to`` if its status allows it and every ``where`` holds, writing
    ``values`` with it; its search (locked first) follows. False: nothing changed.

    One conditional update: two processes racing for one job cannot both move it."""
    search_id = lock_search_of(session, job_id)
    moved = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(TRANSITIONS[to]), *where)
        .values(status=to, **values)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return False
    if JobStatus(to).ended:
        outbox.job_ended(session, job_id, JobStatus(to), job_view)  # in this transaction
        drop_input(session, job_id)  # a batch's archive: read by now, or never to be
    if search_id is not None:
        refresh_search(session, search_id)
    return True


def lock_search(session: Session, search_id: str) -> Search:
    """Lock the search row: ``FOR UPDATE`` on PostgreSQL; on SQLite, a write to it, which takes
    the database's write lock (SQLite ignores ``FOR UPDATE``, and its driver runs reads before a
    transaction's first write outside it, so a plain read would see no other writer's lock).

    Every writer of a search's trials takes this lock before it reads them, so two trials
    ending at once cannot each read the other as still running, nor two advances add one trial
    twice."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Search).where(Search.id == search_id).values(paused=Search.paused))
    stmt = select(Search).where(Search.id == search_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def lock_search_of(session: Session, job_id: str) -> str | None:
    """Lock the job's search, if it has one, before the job is written."""
    search_id = session.scalar(select(Job.search_id).where(Job.id == job_id))
    if search_id is not None:
        lock_search(session, search_id)
    return search_id


def refresh_search(session: Session, search_id: str) -> None:
    """Recompute the search's status from its trials and, once all ended, its best trial.

    A search has ended when every trial it will run has ended (or it was cancelled): trials not
    yet added (beyond ``max_concurrent_trials``) keep it running, or paused."""
    search = lock_search(session, search_id)
    trials = list(
        session.scalars(
            select(Job).where(Job.search_id == search_id).execution_options(populate_existing=True)
        )
    )
    statuses = [t.status for t in trials]
    to_add = 0 if search.cancel_requested else max(0, (search.num_trials or 0) - len(trials))
    if to_add or not all(s in ENDED for s in statuses):
        started = any(s is not JobStatus.queued for s in statuses)
        if search.paused:
            search.status = SearchStatus.paused
        else:
            search.status = SearchStatus.running if started else SearchStatus.queued
        search.best_job_id = None
        search.finished_at = None
        return
    best = best_trial(session, search, trials)
    search.best_job_id = best.id if best is not None else None
    if search.finished_at is None and best is not None and search.register_best_as:
        register_winner(session, search, best.id)
    if search.cancel_requested or all(s is JobStatus.cancelled for s in statuses):
        search.status = SearchStatus.cancelled
    elif any(s in (JobStatus.succeeded, JobStatus.pruned) for s in statuses):
        search.status = SearchStatus.succeeded
    else:
        search.status = SearchStatus.failed
    if search.finished_at is None:
        search.finished_at = utcnow()
        outbox.search_ended(session, search, search_view)  # in this transaction
