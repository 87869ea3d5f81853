"""The webhook outbox: events written in the transaction of the change they report.

A job that ends, a search that ends and an alias that moves each record an event here, in the
caller's session, so the event and the change commit together or not at all (a crash between
"job succeeded" and "webhook sent" loses nothing: :mod:`cnnlab.webhooks` delivers from these
rows). An event is written only when one of the owner's webhooks subscribes to its type, with one
delivery row per such webhook; with none, recording costs one indexed query and writes nothing.

``data`` is the job or search as the API shows it, built by the view the caller passes
(:mod:`cnnlab.lifecycle.views`, which the API answers with too), or the model alias moved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.status import JobStatus, SearchStatus
from cnnlab.store.model_versions import get_version
from cnnlab.store.tables import (
    Job,
    Search,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    new_id,
    utcnow,
)

EventType = Literal[
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "search.succeeded",
    "search.failed",
    "model.alias_moved",
    "evaluation.succeeded",
    "evaluation.failed",
    "comparison.succeeded",
    "comparison.failed",
    "batch_prediction.succeeded",
    "batch_prediction.failed",
    "batch_prediction.cancelled",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
_JOB_EVENTS = {
    JobStatus.succeeded: "job.succeeded",
    JobStatus.failed: "job.failed",
    JobStatus.cancelled: "job.cancelled",
}
# The resource each kind of job is shown as (its events' prefix); a train job is a "job".
KIND_RESOURCE = {
    "train": "job",
    "evaluate": "evaluation",
    "compare": "comparison",
    "batch_predict": "batch_prediction",
}


def job_event_type(kind: str | None, status: JobStatus) -> str | None:
    """``<resource>.<status>`` for a job of ``kind`` that ended so, if that is an event type."""
    event = _JOB_EVENTS.get(status)
    if event is None:
        return None
    resource = KIND_RESOURCE.get(kind or "train", "job")
    event = event.replace("job.", f"{resource}.", 1)
    return event if event in EVENT_TYPES else None


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


def job_ended(
    session: Session, job_id: str, status: JobStatus, view: Callable[[Job], dict[str, Any]]
) -> str | None:
    """Record ``job.<status>`` for a job that has just ended (nothing for ``pruned``), its data
    the job's ``view``; for an evaluation, comparison or batch prediction,
    ``evaluation.<status>`` and so on."""
    if status not in _JOB_EVENTS:
        return None
    # The owner's subscribed webhooks in one query, joined through the job: no job load when
    # there are none.
    rows = session.execute(
        select(Webhook.id, Webhook.events, Job.kind)
        .join(Job, Job.owner_id == Webhook.owner_id)
        .where(Job.id == job_id)
    ).all()
    event_type = job_event_type(rows[0][2] if rows else None, status)
    if event_type is None:
        return None
    hooks = [hook_id for hook_id, events, _ in rows if event_type in (events or ())]
    if not hooks:
        return None
    job = session.scalars(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).one()
    return record(session, job.owner_id, event_type, view(job), webhook_ids=hooks)


def search_ended(
    session: Session, search: Search, view: Callable[[Session, Search], dict[str, Any]]
) -> str | None:
    """Record ``search.<status>`` for a search that has just ended (nothing when cancelled), its
    data the search's ``view``."""
    event_type = _SEARCH_EVENTS.get(search.status)
    if event_type is None:
        return None
    hooks = subscribers(session, search.owner_id, event_type)
    if not hooks:
        return None
    return record(session, search.owner_id, event_type, view(session, search), webhook_ids=hooks)


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
    data: dict[str, Any] = {
        "name": name,
        "alias": alias,
        "version": version,
        "previous_version": previous_version,
        "model_version": asdict(get_version(session, owner_id, name, version)),
    }
    return record(session, owner_id, "model.alias_moved", data, webhook_ids=hooks)


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 strings (as the API writes them), recursively; the rest as is."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
