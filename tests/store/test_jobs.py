"""Owner-facing job services: paging, ownership, cancellation, checkpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from cnnlab import lifecycle
from cnnlab.store import jobs
from cnnlab.store.errors import Conflict, InvalidCursor, NotFound
from cnnlab.store.paging import decode_cursor, encode_cursor
from cnnlab.store.tables import CheckpointKind, JobStatus, utcnow
from tests.utils.factories import make_job, make_user, metrics


def test_pages_are_newest_first_without_gaps_or_repeats(session: Session) -> None:
    alice, _ = make_user(session)
    bob, _ = make_user(session)
    start = utcnow()
    # Two jobs share a timestamp: the id breaks the tie, so paging stays exact.
    stamps = [start + timedelta(seconds=i) for i in range(6)] + [start + timedelta(seconds=3)]
    made = [make_job(session, alice, created_at=t).id for t in stamps]
    make_job(session, bob)
    session.commit()

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = jobs.list_jobs(session, alice.id, limit=3, cursor=cursor)
        seen += [j.id for j in page.items]
        pages += 1
        cursor = page.next
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    by_id = {j: t for j, t in zip(made, stamps, strict=True)}
    keys = [(by_id[j], j) for j in seen]
    assert keys == sorted(keys, reverse=True)


def test_page_filters(session: Session) -> None:
    alice, _ = make_user(session)
    make_job(session, alice)
    running = make_job(session, alice, status=JobStatus.running)
    session.commit()
    page = jobs.list_jobs(session, alice.id, status=JobStatus.running)
    assert [j.id for j in page.items] == [running.id] and page.next is None


def test_cursor_round_trip_and_garbage() -> None:
    now = utcnow()
    assert decode_cursor(encode_cursor(now, "abc")) == (now, "abc")
    for bad in ("", "!!!", "bm90LWEtY3Vyc29y", encode_cursor(now, "")):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_another_users_job_is_not_found(session: Session) -> None:
    alice, _ = make_user(session)
    bob, _ = make_user(session)
    job = make_job(session, alice)
    session.commit()
    assert jobs.get_job(session, alice.id, job.id).id == job.id
    for call in (jobs.get_job, lifecycle.cancel_job, jobs.job_metrics, jobs.get_checkpoint):
        with pytest.raises(NotFound):
            call(session, bob.id, job.id)
    with pytest.raises(NotFound):
        jobs.get_job(session, alice.id, "0" * 32)


def test_cancel_queued_running_and_ended(session: Session) -> None:
    alice, _ = make_user(session)
    queued = make_job(session, alice)
    running = make_job(session, alice)
    done = make_job(session, alice, status=JobStatus.succeeded)
    session.commit()
    assert lifecycle.claim(session, running.id, "w1") is not None

    assert lifecycle.cancel_job(session, alice.id, queued.id).status is JobStatus.cancelled
    job = lifecycle.cancel_job(session, alice.id, running.id)
    assert job.status is JobStatus.running and job.cancel_requested
    assert jobs.cancel_requested(session, running.id)
    assert lifecycle.cancel_job(session, alice.id, done.id).status is JobStatus.succeeded
    session.commit()
    # A cancelled job is never claimed.
    assert lifecycle.claim(session, queued.id, "w2") is None


def test_checkpoint_and_model_need_a_finished_epoch(session: Session) -> None:
    alice, _ = make_user(session)
    job = make_job(session, alice)
    session.commit()
    with pytest.raises(Conflict):
        jobs.get_checkpoint(session, alice.id, job.id)
    with pytest.raises(Conflict):
        jobs.model_epoch(session, alice.id, job.id)
    lifecycle.claim(session, job.id, "w")
    lifecycle.record_epoch(session, job.id, metrics(1, 0.5), last=b"last-1", best=b"best-1")
    lifecycle.record_epoch(session, job.id, metrics(2, 0.4), last=b"last-2", best=None)
    session.commit()
    best = jobs.get_checkpoint(session, alice.id, job.id)
    last = jobs.get_checkpoint(session, alice.id, job.id, CheckpointKind.last)
    assert (best.data, best.epoch) == (b"best-1", 1)
    assert (last.data, last.epoch) == (b"last-2", 2)
    assert jobs.model_epoch(session, alice.id, job.id) == 1
    assert jobs.model_bytes(session, job.id) == (1, b"best-1")
    bob, _ = make_user(session)
    with pytest.raises(NotFound):  # someone else's model is not found, not a conflict
        jobs.model_epoch(session, bob.id, job.id)
    assert [m.epoch for m in jobs.metrics_after(session, job.id, 1)] == [2]
