"""A worker trains a search's trials packed (``CNNLAB_PACK_ON_CPU=1`` here, as a GPU worker does
by default): one pool process holds every trial of the pack, each under its own lease; results
match the same trials trained one at a time; a pruned or cancelled trial leaves the pack and the
others go on; a killed pack is taken over and resumed, every epoch recorded once."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from cnnlab.lifecycle import cancel_job
from cnnlab.status import SearchStatus
from cnnlab.store.db import session_scope
from cnnlab.store.tables import EpochMetric, Job
from cnnlab.testing.stack import wait_until
from tests.faults.harness import (
    BASE,
    SPEC,
    ended_search,
    epoch_rows,
    owner,
    row,
    start_search,
    trial_ids,
    wait_row,
    worker_env,
    workers,
)

pytestmark = pytest.mark.slow

LRS = [0.1, 0.05, 0.02]
PACKED_LOG = "train as one pack"


def _packing() -> dict[str, str]:
    return worker_env(CNNLAB_PACK_ON_CPU="1")


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _curves(search_id: str) -> list[list[tuple[float, float, float]]]:
    """Per trial (in trial order), per epoch: train loss, validation loss and accuracy."""
    with session_scope() as session:
        return [
            [
                (m.train_loss, m.val_loss, m.val_accuracy)
                for m in session.scalars(
                    select(EpochMetric).where(EpochMetric.job_id == j).order_by(EpochMetric.epoch)
                )
            ]
            for j in trial_ids(search_id)
        ]


def _overlap(search_id: str) -> bool:
    """Every trial started before any of them ended (one pool process: they ran as one)."""
    with session_scope() as session:
        trials = list(session.scalars(select(Job).where(Job.search_id == search_id)))
    first_end = min(t.finished_at for t in trials if t.finished_at is not None)
    return all(t.started_at is not None and t.started_at < first_end for t in trials)


def test_packed_trials_run_at_once_and_match_their_runs_one_at_a_time(
    mnist_home: Path, tmp_path: Path
) -> None:
    with workers(_dir(tmp_path / "packed"), 1, _packing()) as procs:
        packed = start_search({"optimizer.lr": LRS})
        wait_until(lambda: ended_search(packed), 180, "the packed search to end", poll=0.5)
        log = procs[0].text()
    with workers(_dir(tmp_path / "alone"), 1) as procs:
        alone = start_search({"optimizer.lr": LRS})
        wait_until(lambda: ended_search(alone), 180, "the unpacked search to end", poll=0.5)
        alone_log = procs[0].text()
    assert {row(j).status for j in trial_ids(packed)} == {"succeeded"}
    assert PACKED_LOG in log and PACKED_LOG not in alone_log
    # One pool process (concurrency 1) had all three trials running at once.
    assert _overlap(packed) and not _overlap(alone)
    packed_curves, alone_curves = _curves(packed), _curves(alone)
    assert [len(c) for c in packed_curves] == [BASE["epochs"]] * len(LRS)
    for trial_packed, trial_alone in zip(packed_curves, alone_curves, strict=True):
        for got, want in zip(trial_packed, trial_alone, strict=True):
            # A grouped convolution sums in another order (README, "Packed trials").
            assert all(math.isclose(g, w, rel_tol=1e-4) for g, w in zip(got, want, strict=True))


def test_a_pruned_and_a_cancelled_trial_leave_the_pack_and_the_rest_go_on(
    mnist_home: Path, tmp_path: Path
) -> None:
    # ASHA: a pack's trials start together, and it compares with trials still running (the
    # median rule waits for completed ones). The first trial decides first at every rung.
    pruner = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
    lrs = [0.1, 0.05, 0.02, 1e-6]
    with workers(tmp_path, 1, _packing()):
        search_id = start_search({"optimizer.lr": lrs}, base=SPEC, pruner=pruner)
        ids = trial_ids(search_id)
        wait_row(ids[2], {"running"}, timeout=60)
        with session_scope() as session:
            cancel_job(session, owner(), ids[2])
        search = wait_until(lambda: ended_search(search_id), 240, "the search to end", poll=0.5)
    rows = {j: row(j) for j in ids}
    statuses = [rows[j].status for j in ids]
    assert statuses[0] == "succeeded" and statuses[2:] == ["cancelled", "pruned"], statuses
    assert statuses[1] in {"succeeded", "pruned"}
    hopeless = rows[ids[3]].error or {}
    assert hopeless.get("type") == "pruned" and hopeless["epoch"] < SPEC["epochs"]
    # The pack went on without the pruned and the cancelled trial.
    assert [e for e, _, _ in epoch_rows(ids[0])] == list(range(1, SPEC["epochs"] + 1))
    assert len(epoch_rows(ids[2])) < SPEC["epochs"]
    assert search.status is SearchStatus.succeeded and search.best_job_id in ids[:2]


def test_a_killed_pack_is_taken_over_and_resumed_every_epoch_once(
    mnist_home: Path, tmp_path: Path
) -> None:
    with workers(tmp_path, 1, _packing()) as procs:
        search_id = start_search({"optimizer.lr": LRS}, base=SPEC)
        ids = trial_ids(search_id)

        def all_past_epoch_one() -> list[int] | None:
            rows = [row(j) for j in ids]
            epochs = {r.epoch for r in rows}
            ready = all(r.status == "running" for r in rows) and len(epochs) == 1
            return [r.pid for r in rows] if ready and epochs.pop() >= 1 else None

        pids = wait_until(all_past_epoch_one, 120, "the pack past its first epoch", poll=0.02)
        assert len(set(pids)) == 1  # one pool process holds the whole pack
        before = {j: epoch_rows(j) for j in ids}
        os.kill(pids[0], signal.SIGKILL)
        wait_until(lambda: ended_search(search_id), 240, "the search to end", poll=0.5)
        log = procs[0].text()
    assert log.count(PACKED_LOG) >= 2  # packed again after the takeover
    for j in ids:
        after = epoch_rows(j)
        assert row(j).status == "succeeded" and row(j).attempts == 2
        assert [e for e, _, _ in after] == list(range(1, SPEC["epochs"] + 1))
        assert after[: len(before[j])] == before[j]  # recorded once, never rewritten
