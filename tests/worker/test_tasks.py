"""The training task's adapter, run in this process against a real migrated SQLite database:
what it writes for each way a job can end. (Worker processes run it in tests/e2e.)"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from sqlalchemy import update

from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import EpochMetric, Job, JobStatus
from tests.utils.factories import submit
from tests.worker.conftest import TINY
from worker.tasks import pack_size, run_job


def _job(job_id: str) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_a_job_trains_and_records_every_epoch(database: None) -> None:
    job_id = submit(TINY)
    assert run_job(job_id, "test/1") is JobStatus.succeeded
    job = _job(job_id)
    assert (job.status, job.epoch, job.attempts, job.worker_id) == ("succeeded", 2, 1, "test/1")
    assert job.test_accuracy is not None and job.error is None
    with session_scope() as session:
        epochs = session.query(EpochMetric.epoch).filter_by(job_id=job_id).all()
    assert sorted(e for (e,) in epochs) == [1, 2]


def test_a_job_that_is_not_queued_is_left_alone(database: None) -> None:
    job_id = submit(TINY)
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.cancelled))
    assert run_job(job_id, "test/1") is None
    assert _job(job_id).attempts == 0


def test_a_core_error_is_recorded_as_a_typed_failure(database: None, data_dir: Path) -> None:
    job_id = submit(TINY)
    shutil.rmtree(data_dir / "MNIST")  # the data vanished between submit and run
    assert run_job(job_id, "test/1") is JobStatus.failed
    error = _job(job_id).error
    assert error is not None and error["type"] == "dataset_unavailable"
    assert "mnist" in error["message"]


def test_an_unexpected_error_gives_a_log_reference_not_a_traceback(
    database: None, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = submit(TINY)
    with session_scope() as session:  # a row no current spec accepts
        session.execute(
            update(Job).where(Job.id == job_id).values(spec={"dataset": "mnist", "x": 1})
        )
    with caplog.at_level(logging.ERROR, logger="worker.tasks"):
        assert run_job(job_id, "test/1") is JobStatus.failed
    error = _job(job_id).error
    assert error is not None and error["type"] == "internal"
    assert "Traceback" not in error["message"]
    logged = [r for r in caplog.records if error["log_ref"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_a_cancel_request_stops_the_job(database: None) -> None:
    job_id = submit({**TINY, "epochs": 3})
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    assert run_job(job_id, "test/1") is JobStatus.cancelled
    job = _job(job_id)
    assert job.status == "cancelled" and job.epoch < 3 and job.test_accuracy is None


@pytest.mark.parametrize(
    ("env", "size"),
    [
        ({}, 1),
        ({"CNNLAB_PACK_ON_CPU": "1"}, 8),
        ({"CNNLAB_PACK_ON_CPU": "1", "CNNLAB_PACK_TRIALS": "1"}, 1),
    ],
)
def test_a_cpu_worker_packs_only_when_told_to(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], size: int
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # undone, and the settings cleared, after the test
    get_settings.cache_clear()
    assert pack_size({"device": "cpu"}) == size
    assert pack_size({"device": "auto"}) == size  # no GPU here


def test_a_warm_started_job_starts_from_the_weights_its_init_names(database: None) -> None:
    """The worker reads the named job's best checkpoint by id and trains from it; the job's
    checkpoints record what it started from."""
    from cnnlab.engine import checkpoints
    from cnnlab.store import jobs as job_store

    source = submit(TINY)
    assert run_job(source, "test/1") is JobStatus.succeeded
    tuned = submit({**TINY, "epochs": 1, "optimizer": {"lr": 1e-9}, "init": {"job_id": source}})
    assert run_job(tuned, "test/1") is JobStatus.succeeded
    with session_scope() as session:
        before = checkpoints.loads(job_store.model_bytes(session, source)[1])
        after = checkpoints.loads(job_store.model_bytes(session, tuned)[1])
    assert after["warm_start"] == {"from": {"job_id": source}, "head_rebuilt": False}
    # A learning rate too small to move them: the weights are the source's.
    for name, value in before["model_state"].items():
        torch.testing.assert_close(after["model_state"][name], value, rtol=0, atol=1e-6)


def test_a_job_stopped_early_succeeds_and_says_when(database: None) -> None:
    spec = {**TINY, "epochs": 5, "optimizer": {"lr": 1e-9}, "early_stopping": {"patience": 1}}
    job_id = submit(spec)
    assert run_job(job_id, "test/1") is JobStatus.succeeded
    job = _job(job_id)
    assert (job.stopped_early_at, job.epoch) == (2, 2) and job.test_accuracy is not None
    with session_scope() as session:
        rates = session.query(EpochMetric.lr).filter_by(job_id=job_id).all()
    assert [lr for (lr,) in rates] == [1e-9, 1e-9]
