"""The webhook outbox: events written in the transaction of the change they report.

A job that ends, a search that ends and an alias that moves each record an event here, in the
caller's session, so the event and the change commit together or not at all (a crash between
"job succeeded" and "webhook sent" loses nothing: :mod:`cnnlab.webhooks` delivers from these
rows). An event is written only when one of the owner's webhooks subscribes to its type, with one
delivery row per such webhook; with none, recording costs one indexed query and writes nothing.

``data`` is the job, search or model alias as the API shows it (``JobRead``, ``SearchRead``),
built here from the rows: the core does not import the API.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.status import JobStatus, SearchStatus
from cnnlab.store.searches import TrialStats, trials_with_stats
from cnnlab.store.tables import (
    Job,
    Search,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    new_id,
    utcnow,
)

EVENT_TYPES = (
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "search.succeeded",
    "search.failed",
    "model.alias_moved",
)
_JOB_EVENTS = {
    JobStatus.succeeded: "job.succeeded",
    JobStatus.failed: "job.failed",
    JobStatus.cancelled: "job.cancelled",
}
_SEARCH_EVENTS = {
    SearchStatus.succeeded: "search.succeeded",
    SearchStatus.failed: "search.failed",
}


def subscribers(session: Session, owner_id: int, event_type: str) -> list[str]:
    """The ids of the owner's webhooks subscribed to ``event_type`` (one indexed query)."""
    rows = session.execute(select(Webhook.id, Webhook.events).where(Webhook.owner_id == owner_id))
    return [hook_id for hook_id, events in rows if event_type in (events or ())]


def record(
    session: Session,
    owner_id: int,
    event_type: str,
    data: dict[str, Any],
    *,
    webhook_ids: list[str] | None = None,
) -> str | None:
    """Add the event and a delivery per subscribed webhook to the session (flushed, not
    committed: it commits with the caller's change). The event's id; None when no webhook of
    the owner subscribes to the type (nothing is written)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    hooks = subscribers(session, owner_id, event_type) if webhook_ids is None else webhook_ids
    if not hooks:
        return None
    now = utcnow()
    event = WebhookEvent(
        id=new_id(), type=event_type, owner_id=owner_id, data=_jsonable(data), created_at=now
    )
    session.add(event)
    session.flush()  # before its deliveries (no relationship orders the inserts)
    session.add_all(
        WebhookDelivery(
            id=new_id(), event_id=event.id, webhook_id=hook_id, next_attempt_at=now, created_at=now
        )
        for hook_id in hooks
    )
    session.flush()
    return event.id


def job_ended(session: Session, job_id: str, status: JobStatus) -> str | None:
    """Record ``job.<status>`` for a job that has just ended (nothing for ``pruned``)."""
    event_type = _JOB_EVENTS.get(status)
    if event_type is None:
        return None
    # The owner's subscribed webhooks in one query, joined through the job: no job load when
    # there are none.
    rows = session.execute(
        select(Webhook.id, Webhook.events, Webhook.owner_id)
        .join(Job, Job.owner_id == Webhook.owner_id)
        .where(Job.id == job_id)
    ).all()
    hooks = [hook_id for hook_id, events, _ in rows if event_type in (events or ())]
    if not hooks:
        return None
    job = session.scalars(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).one()
    return record(session, job.owner_id, event_type, job_data(job), webhook_ids=hooks)


def search_ended(session: Session, search: Search) -> str | None:
    """Record ``search.<status>`` for a search that has just ended (nothing when cancelled)."""
    event_type = _SEARCH_EVENTS.get(search.status)
    if event_type is None:
        return None
    hooks = subscribers(session, search.owner_id, event_type)
    if not hooks:
        return None
    return record(
        session, search.owner_id, event_type, search_data(session, search), webhook_ids=hooks
    )


def alias_moved(
    session: Session,
    owner_id: int,
    name: str,
    alias: str,
    version: int,
    previous_version: int | None,
) -> str | None:
    """Record ``model.alias_moved``: the alias now points at ``version`` (``previous_version``
    None: the alias is new). Nothing when it did not move."""
    if version == previous_version:
        return None
    hooks = subscribers(session, owner_id, "model.alias_moved")
    if not hooks:
        return None
    from cnnlab.store.model_versions import get_version  # the registry calls this module

    data: dict[str, Any] = {
        "name": name,
        "alias": alias,
        "version": version,
        "previous_version": previous_version,
        "model_version": asdict(get_version(session, owner_id, name, version)),
    }
    return record(session, owner_id, "model.alias_moved", data, webhook_ids=hooks)


# -- data: the rows as the API shows them ------------------------------------------------------
def job_data(job: Job) -> dict[str, Any]:
    """A job as ``GET /v1/jobs/{id}`` shows it (``JobRead``)."""
    return {
        "id": job.id,
        "status": str(job.status),
        "spec": job.spec,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "epoch": job.epoch,
        "attempts": job.attempts,
        "best_val_accuracy": job.best_val_accuracy,
        "test_accuracy": job.test_accuracy,
        "error": job.error,
        "cancel_requested": bool(job.cancel_requested),
        "search_id": job.search_id,
        "params": job.params,
        "stopped_early_at": job.stopped_early_at,
    }


def search_data(session: Session, search: Search) -> dict[str, Any]:
    """A search as ``GET /v1/searches/{id}`` shows it (``SearchRead``), with its trials."""
    trials, scores, stats = trials_with_stats(session, search)
    best = next((t for t in trials if t.id == search.best_job_id), None)
    return {
        "id": search.id,
        "status": str(search.status),
        "base": search.base,
        "grid": search.grid or {},
        "space": search.space,
        "sampler": search.sampler or "grid",
        "num_trials": search.num_trials,
        "seed": search.seed or 0,
        "pruner": search.pruner,
        "max_concurrent_trials": search.max_concurrent_trials,
        "metric": search.metric,
        "mode": search.mode,
        "paused": bool(search.paused),
        "trials": [
            _trial_data(t, scores.get(t.id), stats.get(t.id), search.metric) for t in trials
        ],
        "best_job_id": search.best_job_id,
        "test_accuracy": best.test_accuracy if best is not None else None,
        "cancel_requested": bool(search.cancel_requested),
        "created_at": search.created_at,
        "finished_at": search.finished_at,
    }


def _trial_data(
    job: Job, score: float | None, stats: TrialStats | None, metric: str
) -> dict[str, Any]:
    # The fields of the API's TrialRead, computed the same way.
    error = job.error or {}
    pruned = error.get("epoch") if error.get("type") == "pruned" else None
    val_loss = stats.best_val_loss if stats is not None else None
    if stats is None and metric == "val_loss":
        val_loss = score
    return {
        "job_id": job.id,
        "index": job.trial_index,
        "params": job.params or {},
        "status": str(job.status),
        "epoch": job.epoch,
        "val_accuracy": job.best_val_accuracy,
        "val_loss": val_loss,
        "score": score,
        "test_accuracy": job.test_accuracy,
        "seconds": stats.seconds if stats is not None else None,
        "error_type": error.get("type"),
        "pruned_epoch": pruned if isinstance(pruned, int) else None,
    }


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 strings (as the API writes them), recursively; the rest as is."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
