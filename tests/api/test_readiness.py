"""``GET /readyz``: the database and the broker, each checked; 503 naming what is down."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from api.main import create_app
from cnnlab.settings import get_settings
from tests.utils.api_client import ApiClient

CLOSED_PORT = 1  # nothing listens there: connections are refused at once


def _readyz(**settings: object) -> tuple[int, dict[str, object]]:
    with ApiClient(create_app(settings=get_settings().model_copy(update=settings))) as client:
        r = client.get("/readyz")  # no token needed
        return r.status_code, r.json()


def test_ready_on_the_embedded_default(client: ApiClient) -> None:
    assert get_settings().broker_url == "embedded"
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.redis
def test_ready_on_redis(db_url: str) -> None:
    status, body = _readyz(broker_url="redis://127.0.0.1:6379/0")
    assert status == 200, body
    assert body["checks"] == {"database": "ok", "broker": "ok"}


def test_a_broker_that_is_down_is_named(db_url: str) -> None:
    start = time.monotonic()
    status, body = _readyz(broker_url=f"redis://127.0.0.1:{CLOSED_PORT}/0")
    assert time.monotonic() - start < 5
    assert status == 503 and body["status"] == "unavailable"
    checks = body["checks"]
    assert isinstance(checks, dict)
    # Which is down, and nothing of why (before: the driver's message, with host and user).
    assert checks == {"database": "ok", "broker": "unavailable"}


def test_an_embedded_broker_it_cannot_open_is_named(db_url: str, tmp_path: Path) -> None:
    # CNNLAB_HOME is a file: the broker's SQLite file cannot be made under it.
    home = tmp_path / "not-a-directory"
    home.write_text("")
    status, body = _readyz(home=home, database_url=db_url)
    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok" and checks["broker"] != "ok"


def test_a_database_that_is_down_is_named(db_url: str) -> None:
    url = f"postgresql://cnnlab@127.0.0.1:{CLOSED_PORT}/cnnlab"
    status, body = _readyz(database_url=url)
    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks == {"database": "unavailable", "broker": "ok"}
    assert "127.0.0.1" not in json.dumps(body) and "cnnlab@" not in json.dumps(body)
    # Liveness is not readiness: the process still answers.
    with ApiClient(
        create_app(settings=get_settings().model_copy(update={"database_url": url}))
    ) as c:
        assert c.get("/healthz").status_code == 200
