"""Cancellation and typed failures through a real worker process: a cancelled queued job never
starts, a cancelled search stops its running trial and its queued ones, and each failure a user
can act on is recorded with its type (no stack trace)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from cnnlab.lifecycle import cancel_job, cancel_search, create_search
from cnnlab.search.config import SearchConfig
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Job, Search
from cnnlab.store.users import get_or_create_user
from tests.faults.harness import SPEC, TINY, row, wait_ended, wait_row, workers
from tests.utils.factories import submit
from worker.queue import enqueue_job

pytestmark = pytest.mark.slow

LONG = {**SPEC, "epochs": 200}


def _owner() -> int:
    with session_scope() as session:
        return get_or_create_user(session, "alice").id


def test_cancelled_queued_jobs_never_start_and_a_search_cancels_every_trial(
    mnist_home: Path, tmp_path: Path
) -> None:
    with workers(tmp_path, 1):
        with session_scope() as session:
            search = create_search(
                session,
                _owner(),
                LONG,
                SearchConfig(grid={"seed": [0, 1, 2]}),
                get_settings(),
                enqueue=enqueue_job,
            )
            search_id = search.id
        lone = submit(TINY)  # queued behind the search's trials on the only worker
        with session_scope() as session:
            trials = list(session.query(Job.id).filter_by(search_id=search_id).all())
        trial_ids = [t for (t,) in trials]
        wait_until_one_runs = wait_row(trial_ids[0], {"running"}, timeout=60)
        assert wait_until_one_runs.attempts == 1
        with session_scope() as session:
            cancel_job(session, _owner(), lone)
            cancel_search(session, _owner(), search_id)
        rows = wait_ended([*trial_ids, lone], timeout=60)
        with session_scope() as session:
            search_row = session.get(Search, search_id)
            assert search_row is not None
            search_status = search_row.status
    assert {r.status for r in rows.values()} == {"cancelled"}
    assert search_status == "cancelled"
    assert rows[trial_ids[0]].attempts == 1 and rows[trial_ids[0]].epoch < 200
    for queued in [*trial_ids[1:], lone]:  # never claimed, never trained
        assert (rows[queued].attempts, rows[queued].epoch) == (0, 0)


def test_failures_are_typed(mnist_home: Path, data_dir: Path, tmp_path: Path) -> None:
    diverging = submit({**TINY, "optimizer": {"name": "sgd", "lr": 100.0}})
    broken = submit(TINY)
    with session_scope() as session:  # a row no current spec accepts: an internal error
        session.execute(update(Job).where(Job.id == broken).values(spec={"dataset": "x", "y": 1}))
    with workers(tmp_path, 1) as (worker,):
        ended = wait_ended([diverging, broken], timeout=60)
        shutil.rmtree(data_dir / "MNIST")  # the data vanished between submit and run
        vanished = wait_row(submit_unvalidated(), {"failed"}, timeout=60)
        log = worker.text()
    errors = {
        "diverged": ended[diverging].error,
        "internal": ended[broken].error,
        "dataset_unavailable": vanished.error,
    }
    for kind, error in errors.items():
        assert error is not None and error["type"] == kind, (kind, error, log[-2000:])
        assert "Traceback" not in error["message"]
    assert {"epoch", "batch", "lr"} <= set(errors["diverged"] or {})
    assert errors["internal"] is not None and errors["internal"]["log_ref"] in log
    assert "mnist" in (errors["dataset_unavailable"] or {})["message"]


def submit_unvalidated() -> str:
    """A job submitted while the data was there (submission checks it), run after it vanished."""
    with session_scope() as session:
        job = Job(owner_id=_owner(), spec={**TINY, "device": "cpu"})
        session.add(job)
        session.flush()
        job_id = job.id
    enqueue_job(job_id, "cpu")
    assert row(job_id).status == "queued"
    return job_id
