"""SIGKILL a worker mid-epoch, on the embedded stack with real worker processes: the job goes
back to the queue, resumes from its last finished epoch on another process, and ends with every
epoch's metrics exactly once; a job whose workers keep dying fails with ``worker_lost``."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cnnlab.testing.procs import WORKER_READY
from tests.faults.harness import (
    SPEC,
    epoch_rows,
    kill_mid_epoch,
    row,
    start_worker,
    wait_row,
    worker_env,
    workers,
)
from tests.utils.factories import submit

pytestmark = pytest.mark.slow


def _assert_resumed(job_id: str, before: list[tuple[int, float, float]], after: list) -> None:
    done = len(before)
    assert done >= 1 and [e for e, _, _ in before] == list(range(1, done + 1))
    assert [e for e, _, _ in after] == list(range(1, SPEC["epochs"] + 1))  # type: ignore[operator]
    # The epochs finished before the kill were not trained again (same numbers), so the first
    # epoch the second attempt wrote is the one after them.
    assert after[:done] == before


def test_killing_the_training_process_resumes_the_job(mnist_home: Path, tmp_path: Path) -> None:
    with workers(tmp_path, 1) as (worker,):
        job_id = submit(SPEC)
        killed, before = kill_mid_epoch(job_id)
        assert killed.status == "running" and killed.epoch == len(before)
        final = wait_row(job_id, {"succeeded", "failed", "cancelled"}, timeout=120)
        log = worker.text()
    assert final.status == "succeeded", (final, log[-3000:])
    assert final.attempts == 2 and final.pid != killed.pid
    _assert_resumed(job_id, before, epoch_rows(job_id))
    assert f"job {job_id} resumes after epoch {killed.epoch}" in log


def test_killing_a_whole_worker_hands_its_job_to_another(mnist_home: Path, tmp_path: Path) -> None:
    with workers(tmp_path, 2) as procs:
        job_id = submit(SPEC)
        wait_row(job_id, {"running"}, timeout=60)
        holder = next(p for p in procs if str(row(job_id).worker_id).startswith(f"cpu-{p.pid}@"))
        survivor = next(p for p in procs if p is not holder)
        # The worker's main process and its pool process: its unacknowledged message dies too.
        _, before = kill_mid_epoch(job_id, group=True)
        assert holder.popen.wait(timeout=10) == -signal.SIGKILL
        final = wait_row(job_id, {"succeeded", "failed", "cancelled"}, timeout=120)
        log = survivor.text()
    assert final.status == "succeeded", (final, log[-3000:])
    assert final.attempts == 2
    assert str(final.worker_id).startswith(f"cpu-{survivor.pid}@")
    _assert_resumed(job_id, before, epoch_rows(job_id))


def test_a_job_whose_workers_keep_dying_fails_as_worker_lost(
    mnist_home: Path, tmp_path: Path
) -> None:
    env = worker_env(CNNLAB_MAX_ATTEMPTS="2")
    worker = start_worker(tmp_path / "worker.log", env)
    try:
        worker.wait_for(WORKER_READY, timeout=90)
        job_id = submit({**SPEC, "epochs": 20})
        first, _ = kill_mid_epoch(job_id, after_epoch=1)
        second, _ = kill_mid_epoch(job_id, after_epoch=first.epoch + 1)
        assert (first.attempts, second.attempts) == (1, 2)
        final = wait_row(job_id, {"succeeded", "failed", "cancelled"}, timeout=60)
    finally:
        worker.stop()
    assert final.status == "failed" and final.attempts == 2
    assert final.error is not None and final.error["type"] == "worker_lost"
    assert "Traceback" not in final.error["message"]
