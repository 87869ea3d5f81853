"""Searches: trials from a grid, status from the trials, the best trial on validation data."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cnnlab import lifecycle
from cnnlab.errors import SpecError
from cnnlab.search.config import SearchConfig
from cnnlab.settings import Settings
from cnnlab.status import SearchStatus
from cnnlab.store import jobs, searches
from cnnlab.store.db import session_scope
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import JobStatus, Search
from tests.utils.datasets import write_mnist
from tests.utils.factories import make_user, metrics

GRID: dict[str, list[Any]] = {"optimizer.lr": [0.01, 0.1], "batch_size": [32, 64]}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    write_mnist(data_dir, n_train=300, n_test=50)
    return Settings(data_dir=data_dir)


def base(**overrides: Any) -> dict[str, Any]:
    return {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1, **overrides}


def _run_trial(db_url: str, job_id: str, val_accuracy: float, status: JobStatus) -> None:
    with session_scope(db_url) as s:
        assert lifecycle.claim(s, job_id, "w") is not None
    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(1, val_accuracy, 1 - val_accuracy), b"l", b"b")
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, status, test_accuracy=val_accuracy - 0.05)


def test_trials_one_per_grid_point_in_order(session: Session, settings: Settings) -> None:
    alice, _ = make_user(session)
    search = lifecycle.create_search(
        session, alice.id, base(), SearchConfig(grid=GRID), settings, enqueue=None
    )
    session.commit()
    trials, scores = searches.trials_with_scores(session, search)
    assert [t.params for t in trials] == [
        {"optimizer.lr": 0.01, "batch_size": 32},
        {"optimizer.lr": 0.01, "batch_size": 64},
        {"optimizer.lr": 0.1, "batch_size": 32},
        {"optimizer.lr": 0.1, "batch_size": 64},
    ]
    assert [t.spec["optimizer"]["lr"] for t in trials] == [0.01, 0.01, 0.1, 0.1]
    assert all(t.status is JobStatus.queued and t.owner_id == alice.id for t in trials)
    assert set(scores.values()) == {None}
    assert search.status is SearchStatus.queued


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": {"optimizer.lr": [0.1, -1.0]}}, "grid.optimizer.lr"),
        ({"grid": {"nope": [1]}}, "grid.nope"),
        ({"grid": {"batch_size": [32, 100000]}}, "grid.batch_size"),
        ({"base": base(val_size=300)}, "base.val_size"),
        ({"metric": "test_accuracy"}, "metric"),
        ({"mode": "up"}, "mode"),
    ],
)
def test_bad_searches_name_the_field(
    session: Session, settings: Settings, body: dict[str, Any], field: str
) -> None:
    alice, _ = make_user(session)
    args: dict[str, Any] = {"base": base(), "grid": GRID, "metric": "val_accuracy", "mode": "max"}
    args.update(body)
    with pytest.raises(SpecError) as err:
        config = SearchConfig.parse({k: v for k, v in args.items() if k != "base"})
        lifecycle.create_search(session, alice.id, args["base"], config, settings, enqueue=None)
    assert err.value.field == field


def test_best_trial_by_validation_metric_once_all_ended(db_url: str, settings: Settings) -> None:
    with session_scope(db_url) as s:
        alice, _ = make_user(s)
        config = SearchConfig(grid=GRID)
        search_id = lifecycle.create_search(s, alice.id, base(), config, settings, enqueue=None).id
        owner = alice.id
    with session_scope(db_url) as s:
        trials, _ = searches.trials_with_scores(s, searches.get_search(s, owner, search_id))
        ids = [t.id for t in trials]

    outcomes = [
        (0.80, JobStatus.succeeded),
        (0.95, JobStatus.failed),
        (0.90, JobStatus.succeeded),
        (0.85, JobStatus.succeeded),
    ]
    for job_id, (acc, status) in zip(ids[:3], outcomes[:3], strict=True):
        _run_trial(db_url, job_id, acc, status)
        with session_scope(db_url) as s:
            search = searches.get_search(s, owner, search_id)
            assert search.status is SearchStatus.running and search.best_job_id is None
    _run_trial(db_url, ids[3], *outcomes[3])
    with session_scope(db_url) as s:
        search = searches.get_search(s, owner, search_id)
        # The failed trial had the highest accuracy but no result to stand on.
        assert search.status is SearchStatus.succeeded and search.best_job_id == ids[2]
        assert search.finished_at is not None
        trials, scores = searches.trials_with_scores(s, search)
        assert scores[ids[0]] == pytest.approx(0.80)


def test_min_val_loss_mode(db_url: str, settings: Settings) -> None:
    with session_scope(db_url) as s:
        alice, _ = make_user(s)
        search = lifecycle.create_search(
            s,
            alice.id,
            base(),
            SearchConfig(grid={"optimizer.lr": [0.01, 0.1]}, metric="val_loss", mode="min"),
            settings,
            enqueue=None,
        )
        search_id, owner = search.id, alice.id
        ids = [t.id for t in searches.trials_with_scores(s, search)[0]]
    _run_trial(db_url, ids[0], 0.7, JobStatus.succeeded)  # val_loss 0.3
    _run_trial(db_url, ids[1], 0.9, JobStatus.succeeded)  # val_loss 0.1
    with session_scope(db_url) as s:
        assert searches.get_search(s, owner, search_id).best_job_id == ids[1]


def test_cancel_search_cancels_its_trials(db_url: str, settings: Settings) -> None:
    with session_scope(db_url) as s:
        alice, _ = make_user(s)
        bob, _ = make_user(s)
        search = lifecycle.create_search(
            s, alice.id, base(), SearchConfig(grid=GRID), settings, enqueue=None
        )
        search_id, owner, other = search.id, alice.id, bob.id
        ids = [t.id for t in searches.trials_with_scores(s, search)[0]]
    with session_scope(db_url) as s:
        lifecycle.claim(s, ids[0], "w")
    with session_scope(db_url) as s:
        with pytest.raises(NotFound):
            lifecycle.cancel_search(s, other, search_id)
        search = lifecycle.cancel_search(s, owner, search_id)
        assert search.status is SearchStatus.running  # one trial still stopping
        trials, _ = searches.trials_with_scores(s, search)
        assert [t.status for t in trials] == [JobStatus.running] + [JobStatus.cancelled] * 3
        assert trials[0].cancel_requested
    with session_scope(db_url) as s:
        assert jobs.cancel_requested(s, ids[0])
        lifecycle.finish_job(s, ids[0], JobStatus.cancelled)
    with session_scope(db_url) as s:
        search = searches.get_search(s, owner, search_id)
        assert search.status is SearchStatus.cancelled and search.best_job_id is None


@pytest.mark.postgres
def test_trials_ending_together_end_the_search(pg_url: str, settings: Settings) -> None:
    """Without the search row lock, both finishers can read the other trial as still running
    and leave the search running forever."""
    for _ in range(5):
        with session_scope(pg_url) as s:
            alice, _ = make_user(s)
            search = lifecycle.create_search(
                s, alice.id, base(), SearchConfig(grid={"seed": [1, 2]}), settings, enqueue=None
            )
            search_id = search.id
            ids = [t.id for t in searches.trials_with_scores(s, search)[0]]
        for job_id in ids:
            with session_scope(pg_url) as s:
                lifecycle.claim(s, job_id, "w")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def finish(
            job_id: str, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
        ) -> None:
            try:
                with session_scope(pg_url) as s:
                    barrier.wait()
                    lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=0.5)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=finish, args=(j,)) for j in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        with session_scope(pg_url) as s:
            assert s.get(Search, search_id).status is SearchStatus.succeeded  # type: ignore[union-attr]
