"""The training task's time limit, from the spec's budget: an attempt past it stops at a batch
boundary and fails with ``time_limit_exceeded``, keeping the epochs it recorded."""

from __future__ import annotations

import pytest

from cnnlab.settings import get_settings
from cnnlab.spec import budget
from cnnlab.spec.train import TrainSpec
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Job, JobStatus
from tests.utils.factories import submit
from tests.worker.conftest import TINY
from worker import tasks
from worker.tasks import run_job


def _limit(monkeypatch: pytest.MonkeyPatch, gflops: str) -> None:
    monkeypatch.setenv("CNNLAB_MIN_THROUGHPUT_GFLOPS", gflops)
    get_settings.cache_clear()


def test_the_task_s_limit_is_the_budget_s(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = TrainSpec.model_validate(TINY)
    _limit(monkeypatch, "5")
    expected = budget.time_limit_seconds(budget.spec_budget(spec, get_settings()), get_settings())
    assert tasks._time_limit_seconds(spec) == expected
    assert expected is not None and expected > budget.TIME_LIMIT_BASE_SECONDS
    _limit(monkeypatch, "0")
    assert tasks._time_limit_seconds(spec) is None


def test_a_job_past_its_time_limit_fails_typed(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No allowance but the FLOPs, at an absurd throughput: a limit of microseconds.
    monkeypatch.setattr(budget, "TIME_LIMIT_BASE_SECONDS", 0.0)
    monkeypatch.setattr(budget, "TIME_LIMIT_SECONDS_PER_STEP", 0.0)
    _limit(monkeypatch, "1e9")
    job_id = submit(TINY)
    assert run_job(job_id, "test/1") is JobStatus.failed
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        error = job.error
    assert error is not None and error["type"] == "time_limit_exceeded"
    assert error["seconds"] >= error["limit"] and error["epoch"] == 0
    assert "CNNLAB_MIN_THROUGHPUT_GFLOPS" in error["message"]


def test_a_job_within_its_time_limit_succeeds(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, "5")
    assert run_job(submit(TINY), "test/1") is JobStatus.succeeded
