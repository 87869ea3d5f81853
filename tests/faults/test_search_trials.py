"""Searches through real worker processes: trials beyond ``max_concurrent_trials`` start as
earlier ones end (added by the worker, not by the test); a hopeless trial is pruned at an epoch
boundary and its model still predicts; pause, resume, cancel and retry act on running trials; a
worker killed mid-trial leaves every trial ended."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from cnnlab import lifecycle
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.predict import Predictor
from cnnlab.lifecycle import create_search
from cnnlab.search.config import SearchConfig
from cnnlab.settings import get_settings
from cnnlab.status import SearchStatus
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Checkpoint, CheckpointKind, EpochMetric, Job
from cnnlab.store.users import get_or_create_user
from cnnlab.testing.stack import wait_until
from tests.faults.harness import (
    BASE,
    SPEC,
    ended_search,
    epoch_rows,
    kill_mid_epoch,
    owner,
    row,
    start_search,
    trial_ids,
    wait_ended,
    wait_row,
    workers,
)
from worker.queue import enqueue_job

pytestmark = pytest.mark.slow


def test_trials_start_one_by_one_and_a_hopeless_one_is_pruned(
    mnist_home: Path, tmp_path: Path
) -> None:
    with workers(tmp_path, 1):
        with session_scope() as session:
            owner = get_or_create_user(session, "alice").id
            create_search(
                session,
                owner,
                BASE,
                SearchConfig.parse(
                    {
                        "grid": {"optimizer.lr": [0.1, 0.05, 1e-6]},
                        "pruner": {"name": "median", "warmup_epochs": 1},
                        "max_concurrent_trials": 1,
                    }
                ),
                get_settings(),
                enqueue=enqueue_job,
            )
        search = wait_until(ended_search, 180, "the search to end", poll=0.5)
    with session_scope() as session:
        trials = list(session.scalars(select(Job).order_by(Job.trial_index)))
        epochs = {
            t.id: list(session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == t.id)))
            for t in trials
        }
        # One at a time: each trial started after the one before it ended.
        for before, after in itertools.pairwise(trials):
            assert before.finished_at is not None and after.started_at is not None
            assert after.started_at >= before.finished_at
        statuses = [t.status.value for t in trials]
        hopeless = trials[2]
        error = hopeless.error or {}
    assert search.status is SearchStatus.succeeded
    assert statuses == ["succeeded", "succeeded", "pruned"]
    assert error.get("type") == "pruned" and error.get("rule") == "median"
    assert epochs[hopeless.id] == list(range(1, error["epoch"] + 1)) and error["epoch"] < 3
    assert search.best_job_id in {trials[0].id, trials[1].id}


def test_a_pruned_trial_s_model_predicts(mnist_home: Path, tmp_path: Path) -> None:
    pruner = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
    with workers(tmp_path, 1):
        search_id = start_search(
            {"optimizer.lr": [0.1, 1e-6]}, pruner=pruner, max_concurrent_trials=1
        )
        search = wait_until(ended_search, 180, "the search to end", poll=0.5)
    good, bad = trial_ids(search_id)
    assert row(bad).status == "pruned" and search.best_job_id == good
    with session_scope() as session:
        best = session.scalar(
            select(Checkpoint.data).where(
                Checkpoint.job_id == bad, Checkpoint.kind == CheckpointKind.best
            )
        )
    assert best is not None
    predictor = Predictor(loads(best))
    answers = predictor.predict_arrays([np.zeros((28, 28), dtype=np.uint8)])
    assert len(answers) == 1 and 0 <= answers[0]["label"] < 10
    assert sum(answers[0]["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_pause_resume_and_retry_act_on_a_running_search(mnist_home: Path, tmp_path: Path) -> None:
    with workers(tmp_path, 1):
        search_id = start_search({"seed": [0, 1, 2]}, base=SPEC, max_concurrent_trials=1)
        first = trial_ids(search_id)[0]
        wait_row(first, {"running"}, timeout=60)
        with session_scope() as session:
            paused = lifecycle.pause_search(session, owner(), search_id)
            assert paused.status is SearchStatus.paused
        wait_row(first, {"succeeded"}, timeout=120)  # the running trial goes on
        time.sleep(2)  # time enough for a next trial to be added, were it not paused
        assert trial_ids(search_id) == [first]
        with session_scope() as session:
            lifecycle.resume_search(session, owner(), search_id, enqueue=enqueue_job)
        second = wait_until(lambda: trial_ids(search_id)[1:2], 30, "a second trial")[0]
        wait_row(second, {"running"}, timeout=60)
        with session_scope() as session:
            lifecycle.cancel_search(session, owner(), search_id)
        wait_until(ended_search, 60, "the cancelled search to end", poll=0.5)
        cancelled = epoch_rows(second)
        assert row(second).status == "cancelled" and len(trial_ids(search_id)) == 2

        with session_scope() as session:
            lifecycle.retry_search(session, owner(), search_id, enqueue=enqueue_job)
        search = wait_until(ended_search, 180, "the retried search to end", poll=0.5)
    ids = trial_ids(search_id)
    statuses = {j: row(j).status for j in ids}
    assert search.status is SearchStatus.succeeded and len(ids) == 3
    assert set(statuses.values()) == {"succeeded"}, statuses
    # The retried trial went on from its last checkpoint: every epoch once, those before the
    # cancel untouched.
    after = epoch_rows(second)
    assert [e for e, _, _ in after] == list(range(1, SPEC["epochs"] + 1))  # type: ignore[operator]
    assert after[: len(cancelled)] == cancelled
    assert row(first).attempts == 1


def test_a_worker_killed_mid_trial_leaves_every_trial_ended(
    mnist_home: Path, tmp_path: Path
) -> None:
    pruner = {"name": "median", "warmup_epochs": 1}
    with workers(tmp_path, 1):
        search_id = start_search(
            {"optimizer.lr": [0.1, 0.05, 1e-6]}, base=SPEC, pruner=pruner, max_concurrent_trials=1
        )
        killed, _ = kill_mid_epoch(trial_ids(search_id)[0])
        assert killed.status == "running"
        search = wait_until(ended_search, 240, "the search to end", poll=0.5)
    rows = wait_ended(trial_ids(search_id), timeout=5)
    assert len(rows) == 3 and search.status is SearchStatus.succeeded
    assert {r.status for r in rows.values()} <= {"succeeded", "pruned"}
    assert next(iter(rows.values())).attempts == 2
