"""A running cnnlab service: its processes, its URL and a user's client.

For the end-to-end, client and fault tests, and for the service benchmarks (``bench.service``),
which start their stacks with these helpers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from cnnlab.status import ENDED_NAMES
from cnnlab.testing.procs import CNNLAB, REPO, Proc

T = TypeVar("T")
ENDED = ENDED_NAMES  # the statuses a job or a search ends in
# Settings a test's own environment may carry that must not leak into a stack's processes.
_STACK_VARS = ("CNNLAB_DATABASE_URL", "CNNLAB_BROKER_URL", "CNNLAB_DOWNLOAD")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STACK_VARS}
    env.update(CNNLAB_HOME=str(home), CNNLAB_DATA_DIR=str(home / "data"), **settings)
    return env


def wait_until(check: Callable[[], T | None], timeout: float, what: str, poll: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def create_token(env: dict[str, str], user: str) -> str:
    out = subprocess.run(
        [*CNNLAB, "token", "create", user], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def client(self, user: str = "alice", *, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client of ``user`` (a new token of theirs)."""
        return self.client_for(create_token(self.env, user), timeout=timeout)

    def client_for(self, token: str, *, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def wait_healthy(self, timeout: float = 90.0) -> None:
        def healthy() -> bool:
            for p in self.procs:
                if p.popen.poll() is not None:
                    raise AssertionError(f"{p.args} exited:\n{p.text()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, "the API to answer /healthz", poll=0.2)

    def logs(self) -> str:
        return "\n".join(f"--- {p.args}\n{p.text()[-3000:]}" for p in self.procs)


@contextmanager
def started(stack: Stack, *, timeout: float = 90.0) -> Iterator[Stack]:
    """The stack once its API answers (within ``timeout`` seconds); its processes are
    stopped afterwards."""
    try:
        stack.wait_healthy(timeout)
        yield stack
    finally:
        for p in stack.procs:
            p.stop(timeout=30)


def wait_for_job(
    client: httpx.Client, job_id: str, statuses: Collection[str], timeout: float
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        return job if job["status"] in statuses else None

    return wait_until(reached, timeout, f"job {job_id} to be {sorted(statuses)}", poll=0.02)
