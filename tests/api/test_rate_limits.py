"""Request limits: requests per token, failed token checks per address, open event streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from api.ratelimit import TokenBuckets
from cnnlab.settings import get_settings
from tests.api.conftest import SPEC, Caller
from tests.utils.api_client import ApiClient
from tests.utils.serving import serve


def _client(**settings: object) -> ApiClient:
    return ApiClient(create_app(settings=get_settings().model_copy(update=settings)))


def _assert_429(r: httpx.Response, limit_name: str) -> None:
    assert r.status_code == 429, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "rate_limited" and detail["limit_name"] == limit_name
    assert int(r.headers["retry-after"]) >= 1
    assert detail["retry_after"] == int(r.headers["retry-after"])


def test_requests_per_token_are_limited(db_url: str, alice: Caller, bob: Caller) -> None:
    with _client(rate_limit_per_minute=3) as client:
        for _ in range(3):
            assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        r = client.get("/v1/jobs", headers=alice.headers)
        _assert_429(r, "requests")
        # A minute's worth refills at 3 a minute: the next token in 20 s.
        assert int(r.headers["retry-after"]) in range(19, 21)
        # Another token has its own bucket; unauthenticated routes have none.
        assert client.get("/v1/jobs", headers=bob.headers).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_default_lets_a_busy_client_through(client: ApiClient, alice: Caller) -> None:
    assert get_settings().rate_limit_per_minute == 600
    for _ in range(100):
        assert client.get("/v1/jobs", headers=alice.headers).status_code == 200


def test_a_bucket_refills_with_time() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, clock=lambda: now[0])
    assert all(buckets.take("k") == 0 for _ in range(60))
    assert buckets.take("k") == pytest.approx(1.0)
    now[0] += 2.5
    assert buckets.take("k") == 0 and buckets.take("k") == 0
    assert buckets.take("k") == pytest.approx(0.5)
    assert TokenBuckets(0).take("k") == 0  # 0 turns the limit off


def test_failed_token_checks_are_throttled_per_address(
    db_url: str, alice: Caller, bob: Caller
) -> None:
    with _client(auth_failures_per_minute=3) as client:
        # Alice's token is checked (and remembered) before the guessing starts.
        assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        for i in range(3):
            r = client.get("/v1/jobs", headers={"Authorization": f"Bearer guess-{i}"})
            assert r.status_code == 401
        r = client.get("/v1/jobs", headers={"Authorization": "Bearer guess-3"})
        _assert_429(r, "auth_failures")
        assert int(r.headers["retry-after"]) in range(19, 21)
        # From that address, a token not verified lately waits too, good or not...
        _assert_429(client.get("/v1/jobs", headers=bob.headers), "auth_failures")
        # ...but one verified within the auth cache's time goes on.
        assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        # A request without a token is no guess, nor is a failed token sent again: 401 as ever.
        assert client.get("/v1/jobs").status_code == 401
        assert (
            client.get("/v1/jobs", headers={"Authorization": "Bearer guess-1"}).status_code == 401
        )


def test_a_bad_token_sent_again_is_no_new_guess(db_url: str, alice: Caller) -> None:
    # A misconfigured client repeating one stale token is told 401 every time (and costs no
    # query after the first); it is distinct failed tokens that look like guessing.
    with _client(auth_failures_per_minute=3) as client:
        for _ in range(20):
            r = client.get("/v1/jobs", headers={"Authorization": "Bearer stale"})
            assert r.status_code == 401 and r.json()["detail"]["type"] == "unauthorized"
        assert client.get("/v1/jobs", headers=alice.headers).status_code == 200


@pytest.fixture
def queued_job(client: ApiClient, alice: Caller, mnist: Path) -> str:
    """A job that stays queued (no worker here), so its event stream stays open."""
    r = client.post("/v1/jobs", json=SPEC, headers=alice.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    with serve(
        create_app(settings=get_settings().model_copy(update={"max_event_streams": 2}))
    ) as url:
        yield url


class Stream:
    """An event stream held open: its response and the iterator reading it (dropping the
    iterator would close the connection)."""

    def __init__(self, stack: ExitStack, http: httpx.Client, url: str, caller: Caller) -> None:
        self.response = stack.enter_context(http.stream("GET", url, headers=caller.headers))
        self.status_code = self.response.status_code
        if self.status_code == 200:
            self.lines = self.response.iter_lines()
            assert next(self.lines).startswith("retry:")  # the stream is running
        else:
            self.response.read()


def test_open_event_streams_are_capped_per_user(
    served: str, alice: Caller, bob: Caller, queued_job: str
) -> None:
    url = f"/v1/jobs/{queued_job}/events"
    with httpx.Client(base_url=served, timeout=10) as http, ExitStack() as outer:
        first, second = ExitStack(), ExitStack()
        outer.enter_context(first)
        outer.enter_context(second)
        held = [Stream(first, http, url, alice), Stream(second, http, url, alice)]
        assert [s.status_code for s in held] == [200, 200]
        with ExitStack() as third:
            _assert_429(Stream(third, http, url, alice).response, "event_streams")
        # Bob's streams are his own (his stream of Alice's job is a 404, not a 429).
        with ExitStack() as other:
            assert Stream(other, http, url, bob).status_code == 404

        # A client that goes away gives its stream back (found at the next poll).
        first.close()
        deadline = time.monotonic() + 10
        while True:
            with ExitStack() as again:
                if Stream(again, http, url, alice).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream was never given back"
            time.sleep(0.2)
        assert held[1].response.is_closed is False
