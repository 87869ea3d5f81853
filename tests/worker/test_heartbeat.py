"""A worker's heartbeat thread, in this process: its row appears when it starts, is renewed every
interval, and goes when it stops. (A real worker's: tests/faults/test_worker_heartbeat.py.)"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from cnnlab.store import workers
from cnnlab.store.db import dispose_engine, session_scope
from cnnlab.store.tables import Worker
from tests.utils.databases import upgraded
from worker import heartbeat
from worker.heartbeat import Heartbeat, gpu_names, worker_id


@pytest.fixture
def database() -> Iterator[None]:
    upgraded()
    yield
    dispose_engine(close=True)


def _rows() -> dict[str, tuple[list[str], list[str], float]]:
    with session_scope() as session:
        return {
            w.id: (w.queues, w.devices, w.last_seen.timestamp())
            for w in session.query(Worker).all()
        }


def test_a_heartbeat_is_written_at_start_renewed_and_removed_at_stop(database: None) -> None:
    beat = Heartbeat(["gpu"], ["NVIDIA H200"], interval=0.05, ident="gpu-host/42")
    beat.start()
    try:
        first = _rows()["gpu-host/42"]
        assert first[:2] == (["gpu"], ["NVIDIA H200"])
        time.sleep(0.3)
        assert _rows()["gpu-host/42"][2] > first[2]
        with session_scope() as session:
            assert workers.serves(session, workers.GPU_QUEUE, within_seconds=1)
            assert not workers.serves(session, "cpu", within_seconds=1)
    finally:
        beat.stop()
    assert _rows() == {}


def test_a_failed_beat_is_logged_and_the_next_one_tries_again(
    database: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    beat = Heartbeat(["cpu"], [], interval=60, ident="cpu-host/1")

    def down(*_: object) -> None:
        raise ConnectionError("the database is restarting")

    with monkeypatch.context() as m:
        m.setattr(heartbeat, "session_scope", down)
        beat.beat()  # no exception: the thread must live on
    assert "heartbeat failed" in caplog.text and _rows() == {}
    beat.beat()
    assert list(_rows()) == ["cpu-host/1"]
    beat.stop()
    assert _rows() == {}


def test_identity_and_device_names() -> None:
    assert worker_id() == f"{socket.gethostname()}/{os.getpid()}"
    assert gpu_names([]) == []
    names = gpu_names(["0"])
    assert len(names) == 1 and names[0]  # nvidia-smi's name, or "GPU 0" without it
