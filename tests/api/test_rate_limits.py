"""Request limits: requests per user (all their tokens; shared through Redis when it is the
broker), failed token checks per address (failures only), open event streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

from api.main import create_app
from api.ratelimit import TokenBuckets
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.users import create_token
from tests.api.conftest import SPEC, Caller
from tests.utils.api_client import ApiClient
from tests.utils.redis import redis_url
from tests.utils.serving import serve


def _client(**settings: object) -> ApiClient:
    return ApiClient(create_app(settings=get_settings().model_copy(update=settings)))


def _assert_429(r: httpx.Response, limit_name: str) -> None:
    assert r.status_code == 429, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "rate_limited" and detail["limit_name"] == limit_name
    assert int(r.headers["retry-after"]) >= 1
    assert detail["retry_after"] == int(r.headers["retry-after"])


def test_requests_per_user_are_limited(db_url: str, alice: Caller, bob: Caller) -> None:
    with _client(rate_limit_per_minute=3) as client:
        for _ in range(3):
            assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        r = client.get("/v1/jobs", headers=alice.headers)
        _assert_429(r, "requests")
        # A minute's worth refills at 3 a minute: the next token in 20 s.
        assert int(r.headers["retry-after"]) in range(19, 21)
        # Another user has their own bucket; unauthenticated routes have none.
        assert client.get("/v1/jobs", headers=bob.headers).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_all_of_a_users_tokens_share_one_rate(db_url: str, alice: Caller) -> None:
    # Before: the bucket was per token, so N tokens gave N times the rate.
    with session_scope(db_url) as s:
        tokens = [create_token(s, alice.user.name) for _ in range(3)]
    with _client(rate_limit_per_minute=3) as client:
        for token in tokens:
            assert client.get("/v1/jobs", headers=bearer(token)).status_code == 200
        for token in [*tokens, alice.token]:
            _assert_429(client.get("/v1/jobs", headers=bearer(token)), "requests")


def test_with_redis_as_the_broker_the_rate_is_shared_by_every_api_process(
    db_url: str, alice: Caller
) -> None:
    # Two apps stand for two API processes; with the embedded broker each counts on its own.
    shared = redis.Redis.from_url(redis_url(6))
    with shared:  # user ids repeat across tests' SQLite databases: start from empty buckets
        for key in shared.scan_iter("cnnlab:limits:*"):
            shared.delete(key)
    update = {"rate_limit_per_minute": 4, "broker_url": redis_url(6)}
    first, second = _client(**update), _client(**update)
    with first, second:
        for client in (first, second, first, second):
            assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        _assert_429(first.get("/v1/jobs", headers=alice.headers), "requests")
        _assert_429(second.get("/v1/jobs", headers=alice.headers), "requests")
    own = {"rate_limit_per_minute": 2}
    with _client(**own) as one, _client(**own) as other:
        for client in (one, one, other, other):
            assert client.get("/v1/jobs", headers=alice.headers).status_code == 200


def test_shared_limits_fall_back_to_the_process_when_redis_is_down(
    db_url: str, alice: Caller
) -> None:
    with _client(rate_limit_per_minute=2, broker_url="redis://127.0.0.1:1/0") as client:
        for _ in range(2):
            assert client.get("/v1/jobs", headers=alice.headers).status_code == 200
        _assert_429(client.get("/v1/jobs", headers=alice.headers), "requests")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


def test_failed_token_checks_are_throttled_per_address_and_only_failures_count(
    db_url: str, alice: Caller, bob: Caller
) -> None:
    # Two clients behind one address (as behind a TLS proxy): one floods bad tokens.
    # Before: once the address was over its failures, a valid token not checked within the
    # last 5 s (Bob's here) was 429 too, so anyone could lock everyone out without a token.
    app = create_app(settings=get_settings().model_copy(update={"auth_failures_per_minute": 3}))
    with ApiClient(app) as guesser, ApiClient(app) as honest:
        for i in range(3):
            r = guesser.get("/v1/jobs", headers={"Authorization": f"Bearer guess-{i}"})
            assert r.status_code == 401
        r = guesser.get("/v1/jobs", headers={"Authorization": "Bearer guess-3"})
        _assert_429(r, "auth_failures")
        # At most the 20 s a token takes to come back at 3 a minute (less if the lookups were
        # slow: the bucket refills meanwhile).
        assert 1 <= int(r.headers["retry-after"]) <= 20
        # A valid token is looked up first: never refused for the address's failures.
        assert honest.get("/v1/jobs", headers=bob.headers).status_code == 200
        assert honest.get("/v1/jobs", headers=alice.headers).status_code == 200
        for _ in range(5):
            assert honest.get("/v1/me", headers=bob.headers).status_code == 200
        _assert_429(
            guesser.get("/v1/jobs", headers={"Authorization": "Bearer guess-4"}), "auth_failures"
        )
        # A request without a token is no guess, nor is a failed token sent again: 401 as ever.
        assert guesser.get("/v1/jobs").status_code == 401
        assert (
            guesser.get("/v1/jobs", headers={"Authorization": "Bearer guess-1"}).status_code == 401
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


def test_behind_a_trusted_proxy_failures_count_per_forwarded_address(db_url: str) -> None:
    # uvicorn trusts X-Forwarded-For from --forwarded-allow-ips (by default 127.0.0.1, the
    # proxy here): each client behind the proxy has its own failure budget.
    settings = get_settings().model_copy(update={"auth_failures_per_minute": 2})
    with serve(create_app(settings=settings)) as url, httpx.Client(base_url=url) as http:

        def check(client_address: str, token: str) -> int:
            headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": client_address}
            return http.get("/v1/jobs", headers=headers).status_code

        assert [check("203.0.113.7", f"guess-{i}") for i in range(3)] == [401, 401, 429]
        assert check("198.51.100.2", "typo") == 401  # another client: not throttled
