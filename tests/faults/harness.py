"""Real worker processes on a shared home, jobs submitted and read through the store, and the
fault figures every test adds to (written to the pytest report as properties)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cnnlab.lifecycle import create_search
from cnnlab.search.config import SearchConfig
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import EpochMetric, Job, Search
from cnnlab.store.users import get_or_create_user
from cnnlab.testing.procs import WORKER_READY, Proc
from cnnlab.testing.stack import CNNLAB, ENDED, wait_until
from worker.queue import enqueue_job

# Short leases and sweeps so a dead worker's job moves on within seconds.
FAST_RECOVERY = {
    "CNNLAB_LEASE_SECONDS": "2",
    "CNNLAB_SWEEP_SECONDS": "0.5",
    "CNNLAB_QUEUED_GRACE_SECONDS": "3",
    "CNNLAB_MAX_ACTIVE_JOBS": "100",
}
# About a second an epoch on one busy core: a kill after the first epoch lands mid-epoch.
SPEC: dict[str, Any] = {
    "dataset": "mnist",
    "train_size": 6000,
    "val_size": 1000,
    "batch_size": 100,
    "epochs": 4,
}
# Three epochs of 1000 images: a search of a few trials ends in seconds.
BASE: dict[str, Any] = {
    "dataset": "mnist",
    "train_size": 1000,
    "val_size": 200,
    "batch_size": 100,
    "epochs": 3,
}
TINY: dict[str, Any] = {
    "dataset": "mnist",
    "train_size": 500,
    "val_size": 100,
    "batch_size": 100,
    "epochs": 1,
}


@dataclass(frozen=True)
class Row:
    status: str
    attempts: int
    epoch: int
    worker_id: str | None
    error: dict[str, Any] | None

    @property
    def pid(self) -> int:
        """The pool process that holds the job (worker ids end in ``/<pid>``)."""
        assert self.worker_id is not None
        return int(self.worker_id.rsplit("/", 1)[1])


def worker_env(**extra: str) -> dict[str, str]:
    """The test process's settings (its home, database and broker), for a worker process."""
    keep = ("CNNLAB_HOME", "CNNLAB_DATA_DIR", "CNNLAB_DATABASE_URL", "CNNLAB_BROKER_URL")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return {**env, **FAST_RECOVERY, **extra}


def start_worker(log: Path, env: dict[str, str] | None = None) -> Proc:
    args = [*CNNLAB, "worker", "--concurrency=1", "--threads=1"]
    return Proc(args, log, env if env is not None else worker_env())


@contextmanager
def workers(tmp_path: Path, n: int, env: dict[str, str] | None = None) -> Iterator[list[Proc]]:
    procs = [start_worker(tmp_path / f"worker{i}.log", env) for i in range(n)]
    try:
        for p in procs:
            p.wait_for(WORKER_READY, timeout=90)
            p.wait_for(r"pool process ready", timeout=90)
        yield procs
    finally:
        for p in procs:
            p.signal(signal.SIGTERM)
        for p in procs:
            p.stop()


def row(job_id: str) -> Row:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return Row(job.status.value, job.attempts, job.epoch, job.worker_id, job.error)


def epoch_rows(job_id: str) -> list[tuple[int, float, float]]:
    """(epoch, seconds, val_loss) per metrics row: a rerun epoch would change its numbers."""
    with session_scope() as session:
        rows = session.execute(
            select(EpochMetric.epoch, EpochMetric.seconds, EpochMetric.val_loss)
            .where(EpochMetric.job_id == job_id)
            .order_by(EpochMetric.epoch)
        )
        return [(e, s, v) for e, s, v in rows]


def wait_row(job_id: str, statuses: set[str], timeout: float) -> Row:
    def reached() -> Row | None:
        current = row(job_id)
        return current if current.status in statuses else None

    return wait_until(reached, timeout, f"job {job_id} to be {sorted(statuses)}")


def wait_ended(job_ids: list[str], timeout: float) -> dict[str, Row]:
    def all_ended() -> dict[str, Row] | None:
        rows = {j: row(j) for j in job_ids}
        return rows if all(r.status in ENDED for r in rows.values()) else None

    return wait_until(all_ended, timeout, f"{len(job_ids)} jobs to end", poll=0.2)


def kill_mid_epoch(
    job_id: str, after_epoch: int = 1, *, group: bool = False, timeout: float = 90
) -> tuple[Row, list[tuple[int, float, float]]]:
    """SIGKILL the pool process training ``job_id`` (``group``: its whole worker, main process
    included) once it is past ``after_epoch``; returns the row and its metrics rows as the killed
    process left them."""

    def past_epoch() -> Row | None:
        current = row(job_id)
        return current if current.status == "running" and current.epoch >= after_epoch else None

    held = wait_until(past_epoch, timeout, f"job {job_id} past epoch {after_epoch}", poll=0.02)
    if group:
        os.killpg(os.getpgid(held.pid), signal.SIGKILL)
    else:
        os.kill(held.pid, signal.SIGKILL)
    wait_until(lambda: not _alive(held.pid), 10, f"pid {held.pid} to die")
    return row(job_id), epoch_rows(job_id)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_search(grid: dict[str, list[Any]], base: dict[str, Any] = BASE, **body: Any) -> str:
    """Create alice's search of ``grid`` over ``base`` (its trials enqueued); its id."""
    with session_scope() as session:
        owner = get_or_create_user(session, "alice").id
        config = SearchConfig.parse({"grid": grid, **body})
        search = create_search(
            session, owner, dict(base), config, get_settings(), enqueue=enqueue_job
        )
        return search.id


def owner() -> int:
    with session_scope() as session:
        return get_or_create_user(session, "alice").id


def trial_ids(search_id: str) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Job.id).where(Job.search_id == search_id).order_by(Job.trial_index)
            )
        )


def ended_search(search_id: str | None = None) -> Search | None:
    """The search (without an id: the one in the database), once it has ended."""
    with session_scope() as session:
        query = (
            select(Search) if search_id is None else select(Search).where(Search.id == search_id)
        )
        found = session.scalars(query).one()
        session.expunge(found)
        return found if found.status.ended else None
