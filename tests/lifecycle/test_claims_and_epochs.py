"""The worker's door to the database: claim, record epochs, cancel, finish."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cnnlab import lifecycle
from cnnlab.store import jobs as store
from cnnlab.store.db import session_scope
from cnnlab.store.tables import EpochMetric, Job, JobStatus
from tests.utils.factories import make_job, make_user, metrics


def test_claim_is_once_only(session: Session) -> None:
    alice, _ = make_user(session)
    job = make_job(session, alice)
    session.commit()
    held = lifecycle.claim(session, job.id, "worker-1")
    assert held is not None and held.spec == job.spec and held.attempt == 1
    assert lifecycle.claim(session, job.id, "worker-2") is None
    session.commit()
    session.refresh(job)
    assert (job.status, job.attempts, job.worker_id) == (JobStatus.running, 1, "worker-1")
    assert job.started_at is not None
    assert lifecycle.claim(session, "f" * 32, "worker-1") is None


def test_claim_races_between_sessions(db_url: str) -> None:
    with session_scope(db_url) as s:
        alice, _ = make_user(s)
        job_id = make_job(s, alice).id
    with session_scope(db_url) as first, session_scope(db_url) as second:
        a = lifecycle.claim(first, job_id, "a")
        first.commit()
        b = lifecycle.claim(second, job_id, "b")
    assert (a is None) != (b is None)


def test_record_epoch_is_idempotent_and_keeps_the_best(session: Session) -> None:
    alice, _ = make_user(session)
    job = make_job(session, alice)
    session.commit()
    lifecycle.claim(session, job.id, "w")
    lifecycle.record_epoch(session, job.id, metrics(1, 0.70), last=b"l1", best=b"b1")
    lifecycle.record_epoch(session, job.id, metrics(2, 0.60), last=b"l2", best=None)
    # A retried task runs epoch 2 again: still one row for it, with the new numbers.
    lifecycle.record_epoch(session, job.id, metrics(2, 0.65, val_loss=0.4), last=b"l2b", best=None)
    session.commit()
    rows = session.scalars(
        select(EpochMetric).where(EpochMetric.job_id == job.id).order_by(EpochMetric.epoch)
    ).all()
    assert [(r.epoch, r.val_accuracy, r.val_loss) for r in rows] == [
        (1, 0.70, 0.5),
        (2, 0.65, 0.4),
    ]
    session.refresh(job)
    assert job.epoch == 2 and job.best_val_accuracy == pytest.approx(0.70)
    assert store.resume_checkpoint(session, job.id) == b"l2b"


def test_finish_records_outcome(session: Session) -> None:
    alice, _ = make_user(session)
    ok, bad = make_job(session, alice), make_job(session, alice)
    session.commit()
    for job in (ok, bad):
        lifecycle.claim(session, job.id, "w")
    lifecycle.finish_job(session, ok.id, JobStatus.succeeded, test_accuracy=0.9)
    error = {"type": "diverged", "message": "learning rate 10 diverged"}
    lifecycle.finish_job(session, bad.id, JobStatus.failed, error=error)
    session.commit()
    session.refresh(ok)
    session.refresh(bad)
    assert (ok.status, ok.test_accuracy, ok.error) == (JobStatus.succeeded, 0.9, None)
    assert (bad.status, bad.error) == (JobStatus.failed, error)
    assert ok.finished_at is not None and bad.finished_at is not None
    with pytest.raises(ValueError):
        lifecycle.finish_job(session, ok.id, JobStatus.running)


def test_an_attempt_ends_as_its_training_came_to_while_it_holds_the_job(
    session: Session,
) -> None:
    alice, _ = make_user(session)
    done, lost, taken = (make_job(session, alice) for _ in range(3))
    session.commit()
    claims = {job.id: lifecycle.claim(session, job.id, "w") for job in (done, lost, taken)}
    session.commit()
    attempt = {job_id: c.attempt for job_id, c in claims.items() if c is not None}
    ended = lifecycle.end_attempt(
        session, done.id, attempt[done.id], JobStatus.succeeded, test_accuracy=0.9
    )
    # Known lost: nothing written. Taken over meanwhile: the fenced write is refused.
    gone = lifecycle.end_attempt(session, lost.id, attempt[lost.id], JobStatus.failed, lost=True)
    late = lifecycle.end_attempt(session, taken.id, attempt[taken.id] + 1, JobStatus.cancelled)
    session.commit()
    assert (ended, gone, late) == (JobStatus.succeeded, None, None)
    rows = {job.id: session.get(Job, job.id, populate_existing=True) for job in (done, lost, taken)}
    assert [(r.status, r.test_accuracy) for r in rows.values() if r is not None] == [
        (JobStatus.succeeded, 0.9),
        (JobStatus.running, None),
        (JobStatus.running, None),
    ]


def test_cancel_request_reaches_the_worker(session: Session) -> None:
    from cnnlab.lifecycle import cancel_job

    alice, _ = make_user(session)
    job = make_job(session, alice)
    session.commit()
    lifecycle.claim(session, job.id, "w")
    session.commit()
    assert store.cancel_requested(session, job.id) is False
    cancel_job(session, alice.id, job.id)
    session.commit()
    assert store.cancel_requested(session, job.id) is True
    lifecycle.finish_job(session, job.id, JobStatus.cancelled)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Job).where(Job.id == job.id)) == 1
    session.refresh(job)
    assert job.status is JobStatus.cancelled
