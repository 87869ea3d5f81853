"""Claiming a pack: the trials a worker takes along with one it claimed are its search's waiting
trials that pack with it, at the same epoch, each claimed on its own (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from cnnlab import lifecycle
from cnnlab.lifecycle import claim_siblings
from cnnlab.settings import Settings
from cnnlab.status import JobStatus
from cnnlab.store.db import session_scope
from tests.lifecycle.test_searches import base, create, run_epochs, settings, trials
from tests.utils.factories import make_job, make_user

__all__ = ["settings"]  # the fixture, shared with the search tests

LRS = [0.1, 0.05, 0.02, 0.01]


def _siblings(db_url: str, job_id: str, limit: int = 8, worker: str = "w") -> list[str]:
    with session_scope(db_url) as s:
        held = lifecycle.claim(s, job_id, worker)
        assert held is not None
        return [j for j, _ in claim_siblings(s, job_id, worker, limit=limit)]


def test_siblings_that_pack_are_claimed_each_with_its_own_attempt(
    db_url: str, settings: Settings
) -> None:
    _, search_id = create(db_url, settings, grid={"optimizer.lr": LRS, "batch_size": [32, 16]})
    found = trials(db_url, search_id)
    assert len(found) == 8
    by_batch: dict[int, list[str]] = {}
    for t in found:
        by_batch.setdefault(t.spec["batch_size"], []).append(t.id)
    first = by_batch[32][0]
    claimed = _siblings(db_url, first)
    # Another batch size never packs; the claimed ones are held as any claimed job is.
    assert claimed == by_batch[32][1:]
    rows = {t.id: t for t in trials(db_url, search_id)}
    for job_id in [first, *claimed]:
        assert rows[job_id].status is JobStatus.running and rows[job_id].attempts == 1
        assert rows[job_id].worker_id == "w" and rows[job_id].lease_expires_at is not None
    assert all(rows[j].status is JobStatus.queued for j in by_batch[16])
    # Held siblings are nobody else's to pack.
    assert _siblings(db_url, by_batch[16][0], worker="v") == by_batch[16][1:]
    with session_scope(db_url) as s:
        assert lifecycle.claim(s, claimed[0], "v") is None


def test_a_pack_stops_at_its_limit_and_at_another_epoch(db_url: str, settings: Settings) -> None:
    owner, search_id = create(db_url, settings, grid={"optimizer.lr": LRS})
    first, ahead, *rest = [t.id for t in trials(db_url, search_id)]
    # A trial cancelled after one epoch and retried waits at epoch 1: it resumes apart.
    attempt = run_epochs(db_url, ahead, [0.5])
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, ahead, JobStatus.cancelled, attempt=attempt)
        lifecycle.retry_search(s, owner, search_id, enqueue=None)
    assert {t.id: t.status for t in trials(db_url, search_id)}[ahead] is JobStatus.queued
    assert _siblings(db_url, first, limit=1) == rest[:1]
    assert _siblings(db_url, rest[1]) == []  # the others are held, the one ahead waits apart


def test_nothing_packs_with_a_lone_job_or_an_adam_trial(db_url: str, settings: Settings) -> None:
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        lone = make_job(s, owner, spec=base()).id
    assert _siblings(db_url, lone) == []
    adam: dict[str, Any] = base(optimizer={"name": "adam", "lr": 0.001})
    _, search_id = create(db_url, settings, base=adam, grid={"optimizer.lr": [0.001, 0.002]})
    assert _siblings(db_url, trials(db_url, search_id)[0].id) == []
