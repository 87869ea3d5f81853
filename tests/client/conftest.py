from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cnnlab.client import Client
from cnnlab.testing.stack import Stack
from tests.utils.service import TINY_MNIST_SPEC, service


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """One service for the client and CLI tests, and user alice's token."""
    with service(tmp_path_factory.mktemp("client-service")) as running:
        yield running


@pytest.fixture(scope="session")
def stack(lab: tuple[Stack, str]) -> Stack:
    return lab[0]


@pytest.fixture(scope="session")
def token(lab: tuple[Stack, str]) -> str:
    return lab[1]


@pytest.fixture
def client(stack: Stack, token: str) -> Iterator[Client]:
    with Client(stack.url, token) as c:
        yield c


@pytest.fixture(scope="session")
def finished_job(stack: Stack, token: str) -> dict[str, Any]:
    """A tiny-MNIST job that has succeeded."""
    with Client(stack.url, token) as c:
        job = c.submit(TINY_MNIST_SPEC)
        done = c.wait(job["id"], timeout=120)
    assert done["status"] == "succeeded", (done, stack.logs())
    return done
