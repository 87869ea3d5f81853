"""A search's life beyond one trial per grid point: trials that wait inside the search, sampled
trials, pruning at an epoch boundary, pause, resume and retry (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from cnnlab import lifecycle
from cnnlab.errors import BudgetExceeded, CnnlabError, SpecError
from cnnlab.search.body import DEFAULT_CONCURRENT_TRIALS
from cnnlab.search.config import SearchConfig
from cnnlab.search.trials import trial_points
from cnnlab.settings import Settings
from cnnlab.status import JobStatus, SearchStatus
from cnnlab.store import searches
from cnnlab.store.db import session_scope
from cnnlab.store.errors import Conflict
from cnnlab.store.tables import Job, Search
from tests.utils.datasets import write_mnist
from tests.utils.factories import make_user, metrics

SPACE = {"optimizer.lr": {"loguniform": [0.001, 0.5]}, "optimizer.momentum": {"uniform": [0, 0.9]}}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    write_mnist(data_dir, n_train=300, n_test=50)
    return Settings(data_dir=data_dir)


def base(**overrides: Any) -> dict[str, Any]:
    return {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 3, **overrides}


def create(db_url: str, settings: Settings, **body: Any) -> tuple[int, str]:
    with session_scope(db_url) as s:
        owner, _ = make_user(s)
        args: dict[str, Any] = dict(body)
        spec = args.pop("base", base())
        max_active = args.pop("max_active", None)
        config = SearchConfig.parse(args)
        search = lifecycle.create_search(
            s, owner.id, spec, config, settings, enqueue=None, max_active=max_active
        )
        return owner.id, search.id


def trials(db_url: str, search_id: str) -> list[Job]:
    with session_scope(db_url) as s:
        rows = s.scalars(select(Job).where(Job.search_id == search_id).order_by(Job.trial_index))
        found = list(rows)
        s.expunge_all()
        return found


def search_row(db_url: str, search_id: str) -> Search:
    with session_scope(db_url) as s:
        found = s.get(Search, search_id)
        assert found is not None
        s.expunge(found)
        return found


def run_epochs(db_url: str, job_id: str, accuracies: list[float]) -> int:
    """Claim the trial and record one epoch per accuracy; the attempt."""
    with session_scope(db_url) as s:
        held = lifecycle.claim(s, job_id, "w")
        assert held is not None
    for epoch, acc in enumerate(accuracies, start=1):
        with session_scope(db_url) as s:
            m = metrics(epoch, acc, 1 - acc)
            assert lifecycle.record_epoch(s, job_id, m, b"l", b"b", attempt=held.attempt)
    return held.attempt


def finish(db_url: str, job_id: str, status: JobStatus, *accuracies: float) -> None:
    attempt = run_epochs(db_url, job_id, list(accuracies or (0.5,)))
    with session_scope(db_url) as s:
        assert lifecycle.finish_job(s, job_id, status, attempt=attempt)
        lifecycle.advance_search_of(s, job_id, enqueue=None)


def test_trials_beyond_the_concurrency_wait_inside_the_search(
    db_url: str, settings: Settings
) -> None:
    grid = {"optimizer.lr": [0.01, 0.1, 0.5], "batch_size": [32, 64]}
    _, search_id = create(db_url, settings, grid=grid, max_concurrent_trials=2)
    assert len(trials(db_url, search_id)) == 2
    assert search_row(db_url, search_id).num_trials == 6
    for step in range(6):
        first_live = next(t for t in trials(db_url, search_id) if not t.status.ended)
        finish(db_url, first_live.id, JobStatus.succeeded, 0.5 + step / 100)
        live = [t for t in trials(db_url, search_id) if not t.status.ended]
        assert len(live) == min(2, 6 - step - 1)
        if step < 5:
            assert search_row(db_url, search_id).status is SearchStatus.running
    done = trials(db_url, search_id)
    assert [t.params for t in done] == [p.params for p in trial_points(base(), grid=grid)]
    search = search_row(db_url, search_id)
    assert search.status is SearchStatus.succeeded and search.best_job_id == done[-1].id


def test_advances_at_the_same_moment_add_each_trial_once(db_url: str, settings: Settings) -> None:
    # A worker whose trial ended and a sweeper may advance one search at once; each must see
    # the trials the other added (on SQLite too, whose reads run outside a transaction).
    grid = {"optimizer.lr": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]}
    _, search_id = create(db_url, settings, grid=grid, max_concurrent_trials=1)
    only = trials(db_url, search_id)[0].id
    finish(db_url, only, JobStatus.cancelled)  # room for the next trial: one left to add
    with session_scope(db_url) as s:
        s.execute(update(Search).where(Search.id == search_id).values(max_concurrent_trials=6))
    barrier = threading.Barrier(4)

    def advance() -> None:
        barrier.wait()
        with session_scope(db_url) as s:
            lifecycle.advance_search(s, search_id, enqueue=None)

    threads = [threading.Thread(target=advance) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    indexes = [t.trial_index for t in trials(db_url, search_id)]
    assert indexes == list(range(6))


def test_a_64_trial_search_fits_the_default_active_job_limit(
    db_url: str, settings: Settings
) -> None:
    grid = {"optimizer.lr": [0.001 * (i + 1) for i in range(8)], "seed": list(range(8))}
    _, search_id = create(db_url, settings, grid=grid, max_active=20)
    assert len(trials(db_url, search_id)) == DEFAULT_CONCURRENT_TRIALS
    assert search_row(db_url, search_id).num_trials == 64


def test_a_random_search_runs_the_planned_draws(db_url: str, settings: Settings) -> None:
    body = {"space": SPACE, "num_trials": 4, "seed": 7, "max_concurrent_trials": 1}
    _, search_id = create(db_url, settings, **body)
    for _ in range(4):
        live = next(t for t in trials(db_url, search_id) if not t.status.ended)
        finish(db_url, live.id, JobStatus.succeeded)
    planned = trial_points(base(), space=SPACE, num_trials=4, seed=7)
    assert [t.params for t in trials(db_url, search_id)] == [p.params for p in planned]
    assert search_row(db_url, search_id).sampler == "random"


def test_a_tpe_search_draws_later_trials_from_the_scores(db_url: str, settings: Settings) -> None:
    body = {"space": SPACE, "sampler": "tpe", "num_trials": 6, "max_concurrent_trials": 2}
    _, search_id = create(db_url, settings, **body)
    for _ in range(6):
        live = next(t for t in trials(db_url, search_id) if not t.status.ended)
        lr = live.params["optimizer.lr"]
        finish(db_url, live.id, JobStatus.succeeded, 1 - abs(math.log10(lr) + 2) / 3)
    done = trials(db_url, search_id)
    assert len(done) == 6 and all(t.status is JobStatus.succeeded for t in done)
    for t in done:
        assert 0.001 <= t.params["optimizer.lr"] <= 0.5
        assert 0 <= t.params["optimizer.momentum"] <= 0.9
    assert search_row(db_url, search_id).status is SearchStatus.succeeded


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"space": {"optimizer.lr": {"loguniform": [0, 1]}}, "num_trials": 2},
            "space.optimizer.lr",
        ),
        ({"space": SPACE, "num_trials": 2, "pruner": {"name": "hyperband"}}, "pruner.name"),
        ({"space": SPACE, "num_trials": 2, "max_concurrent_trials": 0}, "max_concurrent_trials"),
        ({"space": SPACE, "num_trials": 2, "metric": "val_loss", "mode": "up"}, "mode"),
    ],
)
def test_a_bad_body_names_its_field(
    db_url: str, settings: Settings, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as err:
        create(db_url, settings, **body)
    assert err.value.field == field


def test_val_loss_ranks_with_mode_min_by_default(db_url: str, settings: Settings) -> None:
    _, search_id = create(db_url, settings, grid={"seed": [1, 2]}, metric="val_loss")
    assert search_row(db_url, search_id).mode == "min"


def test_a_trial_behind_the_others_is_pruned_and_keeps_its_metrics(
    db_url: str, settings: Settings
) -> None:
    pruner = {"name": "median", "warmup_epochs": 1}
    _, search_id = create(
        db_url, settings, grid={"seed": [1, 2, 3]}, pruner=pruner, max_concurrent_trials=3
    )
    first, second, third = trials(db_url, search_id)
    finish(db_url, first.id, JobStatus.succeeded, 0.6, 0.7, 0.8)
    finish(db_url, second.id, JobStatus.succeeded, 0.5, 0.6, 0.7)
    attempt = run_epochs(db_url, third.id, [0.2, 0.25])  # epoch 1 is the warm-up
    with session_scope(db_url) as s:
        assert lifecycle.prune_if_due(s, third.id, attempt + 1) is None  # not its attempt
        decision = lifecycle.prune_if_due(s, third.id, attempt)
    assert decision is not None and decision.rule == "median" and decision.epoch == 2
    pruned = trials(db_url, search_id)[2]
    assert pruned.status is JobStatus.pruned and pruned.lease_expires_at is None
    assert pruned.error is not None and pruned.error["type"] == "pruned"
    assert pruned.error["epoch"] == 2 and pruned.best_val_accuracy == pytest.approx(0.25)
    search = search_row(db_url, search_id)
    assert search.status is SearchStatus.succeeded and search.best_job_id == first.id
    # Its training stopped (or failed, or its lease lapsed) after the pruning: it stays pruned.
    with session_scope(db_url) as s:
        for trained in (JobStatus.cancelled, JobStatus.failed):
            ended = lifecycle.end_attempt(
                s, third.id, attempt, trained, pruned=True, lost=True, error={"type": "x"}
            )
            assert ended is JobStatus.pruned
    after = trials(db_url, search_id)[2]
    assert after.status is JobStatus.pruned and after.error == pruned.error


def test_a_trial_ahead_goes_on_and_a_search_without_a_pruner_never_prunes(
    db_url: str, settings: Settings
) -> None:
    pruner = {"name": "median", "warmup_epochs": 1}
    for body in ({"pruner": pruner}, {}):
        _, search_id = create(db_url, settings, grid={"seed": [1, 2]}, **body)
        first, second = trials(db_url, search_id)
        finish(db_url, first.id, JobStatus.succeeded, 0.5, 0.6, 0.7)
        attempt = run_epochs(db_url, second.id, [0.9, 0.9] if body else [0.1, 0.1])
        with session_scope(db_url) as s:
            assert lifecycle.prune_if_due(s, second.id, attempt) is None


def test_a_pruned_trial_is_best_only_when_no_finished_one_scores_as_well(
    db_url: str, settings: Settings
) -> None:
    _, search_id = create(db_url, settings, grid={"seed": [1, 2, 3]})
    a, b, c = trials(db_url, search_id)
    finish(db_url, a.id, JobStatus.succeeded, 0.7)
    finish(db_url, b.id, JobStatus.failed, 0.99)
    attempt = run_epochs(db_url, c.id, [0.7])
    with session_scope(db_url) as s:
        assert lifecycle.move(
            s, c.id, JobStatus.pruned, where=(lifecycle.leases.held(c.id, attempt),)
        )
    assert search_row(db_url, search_id).best_job_id == a.id  # a tie goes to the finished one


def test_pause_starts_no_new_trial_and_resume_goes_on(db_url: str, settings: Settings) -> None:
    owner, search_id = create(db_url, settings, grid={"seed": [1, 2, 3]}, max_concurrent_trials=1)
    with session_scope(db_url) as s:
        assert lifecycle.pause_search(s, owner, search_id).status is SearchStatus.paused
    finish(db_url, trials(db_url, search_id)[0].id, JobStatus.succeeded)
    assert len(trials(db_url, search_id)) == 1
    assert search_row(db_url, search_id).status is SearchStatus.paused  # not ended: 2 to go
    with session_scope(db_url) as s:
        resumed = lifecycle.resume_search(s, owner, search_id, enqueue=None)
        assert resumed.status is SearchStatus.running and not resumed.paused
    assert len(trials(db_url, search_id)) == 2


def test_retry_runs_again_only_failed_and_cancelled_trials(db_url: str, settings: Settings) -> None:
    owner, search_id = create(db_url, settings, grid={"seed": [1, 2, 3]})
    a, b, c = trials(db_url, search_id)
    with session_scope(db_url) as s, pytest.raises(Conflict):
        lifecycle.retry_search(s, owner, search_id, enqueue=None)
    finish(db_url, a.id, JobStatus.succeeded, 0.6)
    finish(db_url, b.id, JobStatus.failed, 0.9)
    with session_scope(db_url) as s:
        lifecycle.cancel_search(s, owner, search_id)
    assert search_row(db_url, search_id).status is SearchStatus.cancelled

    sent: list[tuple[str, str]] = []
    with session_scope(db_url) as s:
        lifecycle.retry_search(s, owner, search_id, enqueue=lambda j, d: sent.append((j, d)))
    assert sorted(j for j, _ in sent) == sorted([b.id, c.id])
    after = {t.id: t for t in trials(db_url, search_id)}
    assert after[a.id].status is JobStatus.succeeded
    assert after[b.id].status is JobStatus.queued and after[b.id].error is None
    assert search_row(db_url, search_id).status is SearchStatus.running
    finish(db_url, b.id, JobStatus.succeeded, 0.9)
    finish(db_url, c.id, JobStatus.succeeded, 0.5)
    search = search_row(db_url, search_id)
    assert search.status is SearchStatus.succeeded and search.best_job_id == b.id


def test_a_retry_checks_each_trial_again_against_today_s_limits(
    db_url: str, settings: Settings
) -> None:
    # About 7.9k and 15.8k parameters: both fit the default limit at create.
    grid = {"model.channels": [[4], [8]]}
    owner, search_id = create(db_url, settings, grid=grid)
    small, large = trials(db_url, search_id)
    finish(db_url, small.id, JobStatus.failed)
    finish(db_url, large.id, JobStatus.failed)
    sent: list[tuple[str, str]] = []
    lowered = settings.model_copy(update={"max_model_params": 10_000})
    with session_scope(db_url) as s:
        lifecycle.retry_search(
            s, owner, search_id, enqueue=lambda j, d: sent.append((j, d)), settings=lowered
        )
    assert [j for j, _ in sent] == [small.id]
    assert trials(db_url, search_id)[1].status is JobStatus.failed
    finish(db_url, small.id, JobStatus.failed)
    lowest = settings.model_copy(update={"max_model_params": 5_000})
    with session_scope(db_url) as s, pytest.raises(BudgetExceeded) as refused:
        lifecycle.retry_search(s, owner, search_id, enqueue=None, settings=lowest)
    assert refused.value.field == "grid.model.channels"


def test_the_sweeper_s_advance_adds_what_a_dead_worker_did_not(
    db_url: str, settings: Settings
) -> None:
    _, search_id = create(db_url, settings, grid={"seed": [1, 2]}, max_concurrent_trials=1)
    first = trials(db_url, search_id)[0]
    attempt = run_epochs(db_url, first.id, [0.5])
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, first.id, JobStatus.succeeded, attempt=attempt)
    assert len(trials(db_url, search_id)) == 1  # the worker died before advancing
    with session_scope(db_url) as s:
        assert search_id in lifecycle.live_searches(s)
        added = lifecycle.advance_search(s, search_id, enqueue=None)
        assert lifecycle.advance_search(s, search_id, enqueue=None) == []
    assert [t.id for t in trials(db_url, search_id)][1:] == added
    with session_scope(db_url) as s:
        trial_rows, _ = searches.trials_with_scores(s, s.get(Search, search_id))  # type: ignore[arg-type]
        assert len(trial_rows) == 2


def test_the_best_trial_is_registered_when_the_search_ends(db_url: str, settings: Settings) -> None:
    from cnnlab.store import model_versions as registry

    target = {"name": "fashion", "alias": "candidate"}
    owner, search_id = create(db_url, settings, grid={"seed": [1, 2]}, register_best_as=target)
    a, b = trials(db_url, search_id)
    finish(db_url, a.id, JobStatus.succeeded, 0.6)
    with session_scope(db_url) as s:
        assert registry.list_models(s, owner).items == []  # not before the search has ended
    finish(db_url, b.id, JobStatus.succeeded, 0.8)
    with session_scope(db_url) as s:
        model = registry.get_model(s, owner, "fashion")
        assert [v.job_id for v in model.versions] == [b.id]
        assert model.aliases == {"candidate": 1}


def test_a_bad_model_name_to_register_as_is_refused_at_creation(
    db_url: str, settings: Settings
) -> None:
    with pytest.raises(CnnlabError) as err:
        create(db_url, settings, grid={"seed": [1]}, register_best_as={"name": "Bad Name"})
    assert err.value.to_dict()["field"] == "register_best_as.name"
