from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cnnlab.testing.procs import Proc
from cnnlab.testing.stack import CNNLAB, Stack, free_port, stack_env, started

FAST_SPEC = {
    "dataset": "fashion_mnist",
    "train_size": 2000,
    "val_size": 1000,
    "batch_size": 256,
    "epochs": 2,
}


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``cnnlab serve`` with two workers on the defaults: SQLite and the embedded broker."""
    home = tmp_path_factory.mktemp("embedded-home")
    port = free_port()
    env = stack_env(home)
    serve = Proc([*CNNLAB, "serve", f"--port={port}", "--workers=2"], home / "serve.log", env)
    with started(Stack(f"http://127.0.0.1:{port}", env, [serve])) as stack:
        yield stack


@pytest.fixture
def alice(embedded_stack: Stack) -> Iterator[httpx.Client]:
    with embedded_stack.client("alice") as client:
        yield client
