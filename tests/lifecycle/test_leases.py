"""Leases on the database row, on SQLite and PostgreSQL: a live claim keeps other deliveries
out, an expired one is taken over, the previous holder's writes are refused, and the sweep sends
abandoned and lost work back (or ends it). Worker processes are in tests/faults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cnnlab import lifecycle
from cnnlab.status import SearchStatus
from cnnlab.store import jobs as store
from cnnlab.store.tables import EpochMetric, Job, JobStatus, Search, utcnow
from tests.utils.factories import make_job, make_user, metrics


def _job(session: Session, **fields: Any) -> Job:
    alice, _ = make_user(session)
    job = make_job(session, alice, **fields)
    session.commit()
    return job


def _expire(session: Session, job_id: str) -> None:
    past = utcnow() - timedelta(seconds=1)
    session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=past))
    session.commit()


def _row(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def test_a_second_delivery_while_the_lease_is_live_does_nothing(session: Session) -> None:
    job = _job(session)
    first = lifecycle.claim(session, job.id, "w1", lease_seconds=60)
    session.commit()
    assert first is not None and first.attempt == 1
    assert lifecycle.claim(session, job.id, "w2", lease_seconds=60) is None
    session.commit()
    row = _row(session, job.id)
    assert (row.status, row.attempts, row.worker_id) == (JobStatus.running, 1, "w1")
    assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_out(
    session: Session,
) -> None:
    job = _job(session)
    old = lifecycle.claim(session, job.id, "w1", lease_seconds=60)
    assert old is not None
    assert lifecycle.record_epoch(
        session, job.id, metrics(1, 0.5), b"l1", b"b1", attempt=old.attempt
    )
    session.commit()
    _expire(session, job.id)

    new = lifecycle.claim(session, job.id, "w2", lease_seconds=60)
    session.commit()
    assert new is not None and new.attempt == 2
    assert store.resume_checkpoint(session, job.id) == b"l1"

    # The old holder wakes up: nothing it writes lands, and it learns it lost the job.
    assert not lifecycle.renew_lease(session, job.id, old.attempt, 60)
    assert not lifecycle.holds(session, job.id, old.attempt)
    assert not lifecycle.record_epoch(session, job.id, metrics(2, 0.9), b"old", None, attempt=1)
    assert not lifecycle.finish_job(session, job.id, JobStatus.succeeded, attempt=old.attempt)
    session.commit()
    row = _row(session, job.id)
    assert (row.status, row.attempts, row.worker_id, row.epoch) == ("running", 2, "w2", 1)
    assert store.resume_checkpoint(session, job.id) == b"l1"
    assert session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job.id)).all() == [
        1
    ]

    assert lifecycle.record_epoch(
        session, job.id, metrics(2, 0.6), b"l2", None, attempt=new.attempt
    )
    assert lifecycle.finish_job(session, job.id, JobStatus.succeeded, attempt=new.attempt)
    session.commit()
    assert _row(session, job.id).status is JobStatus.succeeded


def test_the_sweep_requeues_an_expired_job_then_fails_it_after_max_attempts(
    session: Session,
) -> None:
    job = _job(session)
    for attempt in (1, 2):
        held = lifecycle.claim(session, job.id, f"w{attempt}", lease_seconds=60, max_attempts=2)
        assert held is not None and held.attempt == attempt
        session.commit()
        _expire(session, job.id)
        swept = lifecycle.sweep(session, max_attempts=2)
        session.commit()
        if attempt == 1:
            assert swept.requeue == [(job.id, "auto")] and swept.ended == []
            assert _row(session, job.id).status is JobStatus.queued
    assert swept.ended == [job.id] and swept.requeue == []
    row = _row(session, job.id)
    assert row.status is JobStatus.failed and row.finished_at is not None
    assert row.error is not None and row.error["type"] == "worker_lost"
    assert row.error["attempts"] == 2
    # Nothing is left for a later sweep or a stray delivery to act on.
    assert lifecycle.sweep(session, max_attempts=2) == lifecycle.Sweep()
    assert lifecycle.claim(session, job.id, "w3", max_attempts=2) is None


def test_a_delivery_of_an_exhausted_job_fails_it_rather_than_running_it(session: Session) -> None:
    job = _job(session)
    assert lifecycle.claim(session, job.id, "w1", max_attempts=1) is not None
    session.commit()
    _expire(session, job.id)
    assert lifecycle.claim(session, job.id, "w2", max_attempts=1) is None
    session.commit()
    row = _row(session, job.id)
    assert row.status is JobStatus.failed and row.error is not None
    assert row.error["type"] == "worker_lost"


def test_an_abandoned_job_asked_to_stop_ends_cancelled(session: Session) -> None:
    job = _job(session)
    assert lifecycle.claim(session, job.id, "w1") is not None
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
    session.commit()
    _expire(session, job.id)
    assert lifecycle.sweep(session).ended == [job.id]
    session.commit()
    assert _row(session, job.id).status is JobStatus.cancelled


def test_a_lost_queued_message_is_sent_again_once_its_queue_is_empty(session: Session) -> None:
    old = utcnow() - timedelta(minutes=10)
    lost = _job(session, created_at=old)
    fresh = _job(session)
    assert lifecycle.sweep(session, queued_grace_seconds=60, resend_queued=lambda d: False) == (
        lifecycle.Sweep()
    )
    swept = lifecycle.sweep(session, queued_grace_seconds=60, resend_queued=lambda d: d == "auto")
    session.commit()
    assert swept.requeue == [(lost.id, "auto")]
    assert fresh.id not in {j for j, _ in swept.requeue}
    # Sent again just now: the next sweep waits another grace period before it resends.
    assert lifecycle.sweep(session, queued_grace_seconds=60).requeue == []


def test_a_sweep_keeps_a_search_consistent(session: Session) -> None:
    alice, _ = make_user(session)
    search = Search(owner_id=alice.id, base={}, grid={}, metric="val_accuracy", mode="max")
    session.add(search)
    session.flush()
    job = make_job(session, alice, search_id=search.id, trial_index=0)
    session.commit()
    assert lifecycle.claim(session, job.id, "w1", max_attempts=1) is not None
    session.commit()
    session.refresh(search)
    assert search.status is SearchStatus.running
    _expire(session, job.id)
    lifecycle.sweep(session, max_attempts=1)
    session.commit()
    session.refresh(search)
    assert search.status is SearchStatus.failed
