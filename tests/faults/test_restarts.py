"""Restarts while jobs are queued and running — the API, Redis (a private server without
persistence, so its queued messages are lost) and every worker — and every job still ends,
once: each epoch's metrics exactly once, no job left queued or running."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.testing.procs import WORKER_READY, Proc
from cnnlab.testing.stack import CNNLAB, ENDED, Stack, free_port, wait_until
from tests.faults.harness import FAST_RECOVERY, epoch_rows, row, start_worker, worker_env
from tests.utils.datasets import write_mnist

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SPEC = {"dataset": "mnist", "train_size": 2000, "val_size": 500, "batch_size": 100, "epochs": 3}
JOBS = 6


class RedisServer:
    """A redis-server of this test's own on a free port, with no persistence at all."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed")
        self.port = free_port()
        self.workdir = workdir
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = Proc(args, self.workdir / f"redis-{os.urandom(2).hex()}.log")
        self.proc.wait_for(r"Ready to accept connections", timeout=20)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.signal(signal.SIGKILL)
        self.proc.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.proc.stop()


def _api(port: int, env: dict[str, str], log: Path) -> Stack:
    api = Proc([*CNNLAB, "api", f"--port={port}"], log, env)
    stack = Stack(f"http://127.0.0.1:{port}", env, [api])
    stack.wait_healthy()
    return stack


def test_restarting_the_api_redis_and_every_worker_loses_no_job(
    cnnlab_home: Path, data_dir: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    write_mnist(data_dir, n_train=2600, n_test=200)
    env = {**os.environ, **worker_env(CNNLAB_BROKER_URL=redis_server.url), **FAST_RECOVERY}
    port = free_port()
    stack = _api(port, env, tmp_path / "api1.log")
    procs = [start_worker(tmp_path / f"w{i}.log", env) for i in range(2)]
    try:
        for p in procs:
            p.wait_for(WORKER_READY, timeout=90)
        with stack.client() as client:
            ids = [client.post("/v1/jobs", json=SPEC).json()["id"] for _ in range(JOBS)]
            wait_until(lambda: any(row(j).status == "running" for j in ids), 90, "a running job")

        # The API: killed outright and started again on the same port.
        stack.procs[0].signal(signal.SIGKILL)
        stack.procs[0].stop()
        stack = _api(port, env, tmp_path / "api2.log")

        # Redis, without persistence: the messages of queued jobs are gone.
        redis_server.kill()
        redis_server.start()

        # Every worker, killed outright with its running job, and started again.
        wait_until(lambda: any(row(j).epoch >= 1 for j in ids), 90, "an epoch to end")
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.stop()
        procs = [start_worker(tmp_path / f"w{i}-again.log", env) for i in range(2)]

        with stack.client() as client:

            def all_ended() -> list[dict] | None:
                jobs = [client.get(f"/v1/jobs/{j}").json() for j in ids]
                return jobs if all(j["status"] in ENDED for j in jobs) else None

            jobs = wait_until(all_ended, 180, "every job to end", poll=0.5)
    finally:
        for p in [*procs, *stack.procs]:
            p.signal(signal.SIGTERM)
        for p in [*procs, *stack.procs]:
            p.stop()
    logs = "\n".join(p.text()[-2000:] for p in procs)
    assert [j["status"] for j in jobs] == ["succeeded"] * JOBS, (jobs, logs)
    for job in jobs:
        assert [e for e, _, _ in epoch_rows(job["id"])] == [1, 2, 3]
        assert 1 <= job["attempts"] <= 3
    assert any(j["attempts"] >= 2 for j in jobs), "no job was running when its worker died"
