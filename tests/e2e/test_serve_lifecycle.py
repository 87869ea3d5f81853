"""Stopping ``cnnlab serve``: a polite stop ends every process it started, even with a job
running, and so does ``serve`` being killed outright (its children notice their parent died)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.testing.procs import Proc
from cnnlab.testing.stack import CNNLAB, Stack, free_port, stack_env, wait_for_job, wait_until
from tests.e2e.conftest import FAST_SPEC

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 is the parent pid; the command name (field 2) may hold spaces.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _started_by(proc: Proc) -> set[int]:
    """The live processes under ``serve``: at least its API, a worker and the worker's pool
    process. Fewer, and "they all ended" would hold of nothing."""
    started = _alive(_descendants(proc.pid))
    assert len(started) >= 3, f"expected the API, a worker and its pool process: {started}"
    return started


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Stack, Proc]]:
    port = free_port()
    env = stack_env(tmp_path / "home")
    proc = Proc([*CNNLAB, "serve", f"--port={port}"], tmp_path / "serve.log", env)
    stack = Stack(f"http://127.0.0.1:{port}", env, [proc])
    try:
        stack.wait_healthy()
        proc.wait_for(r"pool process ready", timeout=90)
        yield stack, proc
    finally:
        proc.stop()


def test_stopping_serve_with_a_job_running_ends_every_process(
    serve: tuple[Stack, Proc], real_fashion_mnist: Path
) -> None:
    stack, proc = serve
    with stack.client() as client:
        job_id = client.post("/v1/jobs", json={**FAST_SPEC, "epochs": 200}).json()["id"]
        wait_for_job(client, job_id, {"running"}, timeout=60)
    started = _started_by(proc)

    t0 = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, proc.text()[-3000:]
    assert time.monotonic() - t0 < 30
    assert not _alive(started), proc.text()[-3000:]


def test_children_stop_when_serve_is_killed(serve: tuple[Stack, Proc]) -> None:
    _, proc = serve
    started = _started_by(proc)
    os.kill(proc.pid, signal.SIGKILL)
    wait_until(lambda: not _alive(started), 40, "serve's children to exit", poll=0.2)
