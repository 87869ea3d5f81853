from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.settings import get_settings
from cnnlab.store.db import dispose_engine
from tests.utils.databases import upgraded
from tests.utils.datasets import write_mnist
from tests.utils.redis import redis_url

REDIS_URL = redis_url(5)  # this suite's own Redis database
# Two epochs of 400 images: a job that trains in about a second.
TINY = {"dataset": "mnist", "train_size": 400, "val_size": 100, "batch_size": 100, "epochs": 2}


@pytest.fixture
def database(data_dir: Path) -> Iterator[None]:
    """A migrated SQLite database under the test's home and a generated MNIST."""
    write_mnist(data_dir)
    upgraded()
    yield
    dispose_engine(close=True)


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL} (.ci/run starts it)")
    client.flushdb()
    monkeypatch.setenv("CNNLAB_BROKER_URL", REDIS_URL)
    get_settings.cache_clear()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(params=["embedded", "redis"])
def broker(request: pytest.FixtureRequest) -> str:
    """Each broker the service supports: the embedded default, then Redis."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_broker"))
    return "embedded"
