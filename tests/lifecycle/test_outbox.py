"""The webhook outbox: an ended job, an ended search and a moved alias write their event in the
transaction of the change (rolled back with it), only for the owner's subscribed webhooks
(SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cnnlab import lifecycle
from cnnlab.lifecycle.models import move_alias
from cnnlab.search.config import SearchConfig
from cnnlab.settings import Settings
from cnnlab.status import JobStatus
from cnnlab.store import model_versions as registry
from cnnlab.store.db import session_scope
from cnnlab.store.tables import (
    Checkpoint,
    CheckpointKind,
    Job,
    WebhookDelivery,
    WebhookEvent,
)
from cnnlab.webhooks.subscriptions import create_webhook
from tests.utils.datasets import write_mnist
from tests.utils.factories import make_job, make_user, metrics

HOOK_URL = "http://127.0.0.1:9/hook"
ALL_JOB_EVENTS = ["job.succeeded", "job.failed", "job.cancelled"]


def events(db_url: str, *owners: int) -> list[WebhookEvent]:
    """The owners' events, oldest first (PostgreSQL's database is shared by the module)."""
    with session_scope(db_url) as s:
        stmt = select(WebhookEvent).where(WebhookEvent.owner_id.in_(owners))
        rows = list(s.scalars(stmt.order_by(WebhookEvent.created_at)))
        s.expunge_all()
        return rows


def deliveries(db_url: str, *owners: int) -> int:
    with session_scope(db_url) as s:
        stmt = (
            select(func.count())
            .select_from(WebhookDelivery)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookEvent.owner_id.in_(owners))
        )
        return int(s.scalar(stmt) or 0)


def running_job(db_url: str, events_: list[str] | None = None) -> tuple[int, str]:
    """A running job of a new user who has a webhook for ``events_`` (None: no webhook)."""
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        if events_ is not None:
            create_webhook(s, owner.id, HOOK_URL, events_, allow_private=True)
        job = make_job(s, owner, JobStatus.running, attempts=1)
        return owner.id, job.id


def test_finishing_a_job_writes_its_event_in_the_same_transaction(db_url: str) -> None:
    owner_id, job_id = running_job(db_url, ALL_JOB_EVENTS)
    # Rolled back: neither the status nor the event.
    with pytest.raises(RuntimeError), session_scope(db_url) as s:
        assert lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=0.9)
        assert s.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.owner_id == owner_id)
        )
        raise RuntimeError("crash before the commit")
    assert events(db_url, owner_id) == [] and deliveries(db_url, owner_id) == 0
    with session_scope(db_url) as s:
        assert s.get(Job, job_id).status is JobStatus.running  # type: ignore[union-attr]
    # Committed: both.
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=0.9)
    [event] = events(db_url, owner_id)
    assert event.type == "job.succeeded" and event.owner_id == owner_id
    assert event.data["id"] == job_id
    assert event.data["status"] == "succeeded"
    assert event.data["test_accuracy"] == 0.9
    assert event.data["finished_at"].endswith("Z")
    assert deliveries(db_url, owner_id) == 1


def test_a_failed_and_a_cancelled_job_have_their_own_types(db_url: str) -> None:
    first, failed = running_job(db_url, ALL_JOB_EVENTS)
    with session_scope(db_url) as s:
        error = {"type": "diverged", "message": "boom"}
        assert lifecycle.finish_job(s, failed, JobStatus.failed, error=error)
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        create_webhook(s, owner.id, HOOK_URL, ["job.cancelled"], allow_private=True)
        queued = make_job(s, owner).id
    with session_scope(db_url) as s:
        assert lifecycle.cancel_job(s, owner.id, queued) is not None
    found = {(e.type, e.data["id"]) for e in events(db_url, first, owner.id)}
    assert found == {("job.failed", failed), ("job.cancelled", queued)}
    failed_event = next(e for e in events(db_url, first) if e.type == "job.failed")
    assert failed_event.data["error"]["type"] == "diverged"


def test_no_event_without_a_subscribed_webhook(db_url: str) -> None:
    first, without = running_job(db_url, None)
    second, other_type = running_job(db_url, ["job.failed"])
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, without, JobStatus.succeeded)
        assert lifecycle.finish_job(s, other_type, JobStatus.succeeded)
    assert events(db_url, first, second) == [] and deliveries(db_url, first, second) == 0


def test_another_users_webhook_gets_nothing(db_url: str) -> None:
    with session_scope(db_url) as s:
        other, _ = make_user(s)
        create_webhook(s, other.id, HOOK_URL, ALL_JOB_EVENTS, allow_private=True)
    owner_id, job_id = running_job(db_url, None)
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, job_id, JobStatus.succeeded)
    assert events(db_url, owner_id, other.id) == []


def test_one_event_with_a_delivery_per_subscribed_webhook(db_url: str) -> None:
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        for _ in range(2):
            create_webhook(s, owner.id, HOOK_URL, ["job.succeeded"], allow_private=True)
        create_webhook(s, owner.id, HOOK_URL, ["job.failed"], allow_private=True)
        job_id = make_job(s, owner, JobStatus.running, attempts=1).id
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, job_id, JobStatus.succeeded)
    assert len(events(db_url, owner.id)) == 1 and deliveries(db_url, owner.id) == 2


def test_a_search_that_ends_writes_one_event(db_url: str, data_dir: Path) -> None:
    write_mnist(data_dir, n_train=300, n_test=50)
    settings = Settings(data_dir=data_dir)
    spec = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        create_webhook(
            s, owner.id, HOOK_URL, ["search.succeeded", "job.succeeded"], allow_private=True
        )
        search = lifecycle.create_search(
            s,
            owner.id,
            spec,
            SearchConfig(grid={"optimizer.lr": [0.01, 0.1]}),
            settings,
            enqueue=None,
        )
        search_id = search.id
    with session_scope(db_url) as s:
        trial_ids = list(s.scalars(select(Job.id).where(Job.search_id == search_id)))
    for i, trial_id in enumerate(trial_ids):
        with session_scope(db_url) as s:
            claim = lifecycle.claim(s, trial_id, "w1")
            assert claim is not None
            assert lifecycle.record_epoch(
                s, trial_id, metrics(1, 0.5 + i / 10), b"last", b"best", attempt=claim.attempt
            )
        with session_scope(db_url) as s:
            assert lifecycle.finish_job(s, trial_id, JobStatus.succeeded, test_accuracy=0.8)
    found = events(db_url, owner.id)
    assert [e.type for e in found].count("job.succeeded") == 2
    [ended] = [e for e in found if e.type == "search.succeeded"]
    assert ended.data["id"] == search_id
    assert ended.data["status"] == "succeeded"
    assert ended.data["best_job_id"] == trial_ids[-1]
    assert {t["job_id"] for t in ended.data["trials"]} == set(trial_ids)


def test_moving_an_alias_writes_an_event(session: Session) -> None:
    owner, _ = make_user(session)
    create_webhook(session, owner.id, HOOK_URL, ["model.alias_moved"], allow_private=True)
    job = make_job(session, owner, JobStatus.succeeded)
    session.add(Checkpoint(job_id=job.id, kind=CheckpointKind.best, epoch=1, data=b"weights"))
    session.flush()
    for _ in range(2):
        registry.register_version(session, owner.id, "fashion", job.id, CheckpointKind.best, "")
    move_alias(session, owner.id, "fashion", "production", 1)
    move_alias(session, owner.id, "fashion", "production", 1)  # not moved: no event
    move_alias(session, owner.id, "fashion", "production", 2)
    session.commit()
    stmt = select(WebhookEvent).where(WebhookEvent.owner_id == owner.id)
    found = list(session.scalars(stmt.order_by(WebhookEvent.created_at)))
    assert [(e.data["previous_version"], e.data["version"]) for e in found] == [(None, 1), (1, 2)]
    assert all(e.type == "model.alias_moved" for e in found)
    assert found[-1].data["model_version"]["job_id"] == job.id
    assert found[-1].data["name"] == "fashion" and found[-1].data["alias"] == "production"
