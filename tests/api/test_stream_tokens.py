"""An open event stream ends once its token is revoked or expires (within the auth-cache time)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from api.main import create_app
from api.routes import events
from api.settings import ApiSettings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Token, utcnow
from cnnlab.store.users import hash_token, new_token, revoke_token
from tests.api.conftest import SPEC, Caller, make_caller
from tests.utils.factories import unique_name
from tests.utils.serving import serve

CACHE_S = 0.2
POLL_S = 0.05  # the streams' poll, shortened: each test waits a few polls, not a few seconds


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "POLL_S", POLL_S)


def _stream_seconds(url: str, caller: Caller, job_id: str, end_it: object) -> float:
    """Open the job's stream, call ``end_it()`` once it has started; seconds until it ends
    (fails if it does not end)."""
    with httpx.stream(
        "GET", f"{url}/v1/jobs/{job_id}/events", headers=caller.headers, timeout=10
    ) as r:
        assert r.status_code == 200
        chunks = r.iter_text()
        assert next(chunks).startswith("retry:")
        started = time.monotonic()
        end_it()  # type: ignore[operator]
        for _ in chunks:
            # Within the auth-cache time and a poll on a quiet machine; a generous bound here so
            # a busy one cannot fail it, while a stream that goes on regardless still does.
            assert time.monotonic() - started < 20, "the stream outlived its token"
        return time.monotonic() - started


def test_a_revoked_or_expired_tokens_stream_ends(db_url: str, mnist: Path) -> None:
    app = create_app(api_settings=ApiSettings(auth_cache_seconds=CACHE_S))
    with serve(app) as url:
        alice = make_caller(db_url)
        job_id = httpx.post(f"{url}/v1/jobs", json=SPEC, headers=alice.headers, timeout=60).json()[
            "id"
        ]

        def revoke() -> None:
            with session_scope(db_url) as s:
                assert revoke_token(s, alice.token)

        _stream_seconds(url, alice, job_id, revoke)

        with session_scope(db_url) as s:
            issued = new_token(s, alice.user.name, expires_in=timedelta(hours=1))
        bearer = Caller(alice.user, issued.token)

        def expire() -> None:
            with session_scope(db_url) as s:
                s.execute(
                    update(Token)
                    .where(Token.token_hash == hash_token(issued.token))
                    .values(expires_at=utcnow())
                )

        _stream_seconds(url, bearer, job_id, expire)
        assert httpx.get(f"{url}/v1/jobs/{job_id}", headers=bearer.headers).status_code == 401


def test_a_live_tokens_stream_goes_on(db_url: str, mnist: Path) -> None:
    app = create_app(api_settings=ApiSettings(auth_cache_seconds=0))  # re-checked every poll
    with serve(app) as url:
        caller = make_caller(db_url)
        job_id = httpx.post(f"{url}/v1/jobs", json=SPEC, headers=caller.headers, timeout=60).json()[
            "id"
        ]
        other = unique_name()
        with session_scope(db_url) as s:
            new_token(s, other)  # someone else's token changes nothing
        with httpx.stream(
            # A queued job sends nothing after its first frame: the read times out after 0.5 s,
            # ten polls, each of which re-checked the token.
            "GET",
            f"{url}/v1/jobs/{job_id}/events",
            headers=caller.headers,
            timeout=10 * POLL_S,
        ) as r:
            chunks = r.iter_text()
            next(chunks)
            started = time.monotonic()
            try:
                for _ in chunks:
                    if time.monotonic() - started > 8 * POLL_S:
                        break
            except httpx.ReadTimeout:
                pass
            # Still open after several re-checks (a queued job sends nothing new meanwhile).
            assert not r.is_closed
