"""A running service for client, CLI and browser tests: one worker and the API.

It is what ``cnnlab serve --workers 1`` runs (the embedded broker, SQLite under its own home):
``cnnlab worker`` and ``cnnlab api`` as separate processes, so each log stays apart.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnlab.testing.procs import REPO, Proc
from cnnlab.testing.stack import CNNLAB, Stack, create_token, free_port, stack_env, started
from tests.utils.datasets import write_mnist

# Tiny generated MNIST: a job of this spec trains in about a second per epoch.
TINY_MNIST_SPEC = {
    "dataset": "mnist",
    "val_size": 200,
    "batch_size": 64,
    "epochs": 2,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
}
# Real Fashion-MNIST (Debian's files), small enough for a few seconds per job.
FASHION_SPEC = {
    "dataset": "fashion_mnist",
    "train_size": 2000,
    "val_size": 1000,
    "batch_size": 256,
    "epochs": 3,
}


@contextmanager
def service(home: Path) -> Iterator[tuple[Stack, str]]:
    """The running service and a token of user ``alice``."""
    env = stack_env(home)
    write_mnist(Path(env["CNNLAB_DATA_DIR"]), n_train=1200, n_test=300)
    token = create_token(env, "alice")  # also applies the migrations
    port = free_port()
    worker = Proc(
        [*CNNLAB, "worker", "--queues=cpu", "--concurrency=1", "--threads=1"],
        home / "worker.log",
        env,
    )
    api = Proc([*CNNLAB, "api", f"--port={port}"], home / "api.log", env)
    with started(Stack(f"http://127.0.0.1:{port}", env, [worker, api])) as stack:
        worker.wait_for(r"ready\.", timeout=60)
        yield stack, token


def cnnlab_cli(
    stack: Stack, *args: str, token: str | None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``cnnlab ARGS`` in a subprocess against ``stack``, as a user would run it."""
    env = {**stack.env, "CNNLAB_URL": stack.url}
    env.pop("CNNLAB_TOKEN", None)
    if token is not None:
        env["CNNLAB_TOKEN"] = token
    return subprocess.run(
        [*CNNLAB, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
