from __future__ import annotations

from collections.abc import Iterator

import pytest

from cnnlab.settings import get_settings

REDIS_URL = "redis://127.0.0.1:6379/5"  # this suite's own Redis database


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
