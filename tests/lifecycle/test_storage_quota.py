"""Checkpoints written by a running job count towards its owner's storage quota: the epoch whose
checkpoints would cross it writes nothing, and the job ends ``failed`` with ``storage_quota``
through the lifecycle (before: running jobs grew past the quota silently)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cnnlab import lifecycle
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Checkpoint, Job, JobStatus
from tests.utils.factories import make_job, make_user, metrics

LIMIT = 1000


@pytest.fixture
def quota(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CNNLAB_MAX_STORAGE_BYTES", str(LIMIT))
    get_settings.cache_clear()
    return db_url


def test_a_checkpoint_that_would_cross_the_quota_fails_the_job(quota: str) -> None:
    with session_scope(quota) as s:
        owner, _ = make_user(s)
        job_id = make_job(s, owner).id
    with session_scope(quota) as s:
        held = lifecycle.claim(s, job_id, "w")
        assert held is not None
    kb = b"x" * 400
    with session_scope(quota) as s:  # 800 bytes: last and best
        assert lifecycle.record_epoch(s, job_id, metrics(1, 0.5), kb, kb, attempt=held.attempt)
    with session_scope(quota) as s:  # the last replaced: still 800
        assert lifecycle.record_epoch(s, job_id, metrics(2, 0.4), kb, None, attempt=held.attempt)
    big = b"y" * 600
    with session_scope(quota) as s:  # 1,200 bytes would be stored: past 1,000
        kept = lifecycle.record_epoch(s, job_id, metrics(3, 0.6), big, big, attempt=held.attempt)
    assert kept is False
    with session_scope(quota) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.failed
        assert job.error is not None and job.error["type"] == "storage_quota"
        assert job.error["epoch"] == 3 and job.error["limit_bytes"] == LIMIT
        assert job.error["used_bytes"] == 1200 and job.finished_at is not None
        stored = s.scalar(
            select(func.sum(func.length(Checkpoint.data))).where(Checkpoint.job_id == job_id)
        )
        assert stored == 800  # the earlier epochs' checkpoints are kept


def test_other_jobs_and_model_versions_of_the_owner_count(quota: str) -> None:
    with session_scope(quota) as s:
        owner, _ = make_user(s)
        first, second = make_job(s, owner).id, make_job(s, owner).id
    for job_id in (first, second):
        with session_scope(quota) as s:
            lifecycle.claim(s, job_id, "w")
    with session_scope(quota) as s:
        assert lifecycle.record_epoch(s, first, metrics(1, 0.5), b"a" * 500, b"a" * 300)
    with session_scope(quota) as s:  # 800 + 300 > 1,000
        assert not lifecycle.record_epoch(s, second, metrics(1, 0.5), b"b" * 300, None)
    with session_scope(quota) as s:
        job = s.get(Job, second)
        assert job is not None and job.status == JobStatus.failed
        assert job.error is not None and job.error["type"] == "storage_quota"


def test_no_limit_writes_any_size(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_MAX_STORAGE_BYTES", "0")
    get_settings.cache_clear()
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        job_id = make_job(s, owner).id
    with session_scope(db_url) as s:
        lifecycle.claim(s, job_id, "w")
    with session_scope(db_url) as s:
        assert lifecycle.record_epoch(s, job_id, metrics(1, 0.5), b"z" * 5000, b"z" * 5000)
