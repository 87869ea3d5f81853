"""A real worker process records its heartbeat: listed (queues, devices, version) by the time it
says it is ready, renewed while it runs, removed when it stops cleanly; a worker killed outright
stops counting as live once its heartbeat is older than the live window."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from cnnlab import __version__
from cnnlab.store import workers
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Worker
from cnnlab.testing.stack import wait_until
from tests.faults.harness import worker_env
from tests.faults.harness import workers as running_workers

pytestmark = pytest.mark.slow

BEAT = {"CNNLAB_WORKER_HEARTBEAT_SECONDS": "0.5"}


def _rows() -> dict[str, Worker]:
    with session_scope() as session:
        rows = {w.id: w for w in session.query(Worker).all()}
        session.expunge_all()
        return rows


def test_a_worker_beats_while_it_runs_and_is_gone_after_it_stops(
    mnist_home: Path, tmp_path: Path
) -> None:
    with running_workers(tmp_path, 1, worker_env(**BEAT)) as (proc,):
        rows = _rows()
        assert len(rows) == 1, rows
        (row,) = rows.values()
        assert row.id.endswith(f"/{proc.popen.pid}")
        assert (row.queues, row.devices, row.version) == (["cpu"], [], __version__)
        first = row.last_seen
        wait_until(lambda: _rows()[row.id].last_seen > first or None, 10, "a second beat")
        with session_scope() as session:
            assert workers.serves(session, "cpu", within_seconds=1.5)
            assert not workers.serves(session, workers.GPU_QUEUE, within_seconds=1.5)
    assert _rows() == {}


def test_a_killed_worker_stops_counting_as_live(mnist_home: Path, tmp_path: Path) -> None:
    with running_workers(tmp_path, 1, worker_env(**BEAT)) as (proc,):
        os.killpg(os.getpgid(proc.popen.pid), signal.SIGKILL)
        proc.popen.wait(timeout=10)
        assert len(_rows()) == 1  # no clean stop: the row stays
        time.sleep(1.6)
        with session_scope() as session:
            assert workers.live_workers(session, within_seconds=1.5) == []
