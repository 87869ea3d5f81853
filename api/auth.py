"""Who is calling: bearer tokens checked against the store, with a short in-process cache, and
the gate that checks them before a ``/v1`` request's body is read.

Checking a token costs a database query and a trip to the threadpool; a busy client sends the
same token many times a second. Known tokens are remembered for ``auth_cache_seconds``, so a
revoked token stops working in this process within that time (0 turns the cache off).

:class:`TokenGate` authenticates every ``/v1`` request in ASGI, before routing: FastAPI would
parse (and hold) a JSON body before any dependency ran, so a caller without a valid token could
make the server read a body up to the size limit. Its user goes to the request's state, where
the ``UserDep`` dependency finds it.

Throttles (:mod:`api.ratelimit`): a token is looked up first, so a valid token is never refused
for other clients' failures; only failed checks count against the client's address (behind a
proxy that is the proxy's, unless uvicorn trusts ``X-Forwarded-For``: README, Security). Then
the user's requests a minute, all their tokens together.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import Unauthorized, error_body
from api.ratelimit import RateLimited, app_limits
from cnnlab.errors import CnnlabError
from cnnlab.lru import LRU
from cnnlab.store.db import read_scope
from cnnlab.store.users import authenticate, hash_token

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str


class AuthCache:
    """Tokens' users for ``ttl_seconds`` after their check, at most ``max_entries`` of them."""

    def __init__(self, ttl_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl_seconds
        # Keyed by the token's hash; each user with the time its entry expires.
        self._entries: LRU[str, tuple[CurrentUser, float]] = LRU(max_entries)

    def get(self, token: str) -> CurrentUser | None:
        if self.ttl <= 0:
            return None
        key = hash_token(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._entries.pop(key)
            return None
        return entry[0]

    def put(self, token: str, user: CurrentUser) -> None:
        if self.ttl <= 0:
            return
        self._entries.put(hash_token(token), (user, time.monotonic() + self.ttl))


def lookup(session: Session, token: str) -> CurrentUser | None:
    """The token's user from the store (None for an unknown or revoked token)."""
    user = authenticate(session, token)
    return None if user is None else CurrentUser(user.id, user.name)


def _lookup(url: str, token: str) -> CurrentUser | None:
    with read_scope(url) as session:
        return lookup(session, token)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 without one."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    return token


async def authenticate_request(app: Any, authorization: str | None, address: str) -> CurrentUser:
    """The caller's user; 401 for a missing or bad token, 429 past the request limits (the
    user's rate, or too many failed token checks from ``address``)."""
    token = bearer_token(authorization)
    token_hash = hash_token(token)
    limits = app_limits(app)
    cache: AuthCache = app.state.auth_cache
    user = cache.get(token)
    if user is None:
        if token_hash in limits.failed_tokens:
            raise Unauthorized("invalid or revoked token")  # the same answer, without a query
        user = await run_in_threadpool(_lookup, app.state.settings.resolved_database_url, token)
        if user is None:
            # Only failures count against the address: its clients with good tokens go on.
            limits.failed_tokens.add(token_hash)
            wait = await limits.auth_failures.check(address)
            if wait:
                raise RateLimited(
                    "too many failed token checks from this address; try again later",
                    limit_name="auth_failures",
                    retry_after=wait,
                )
            raise Unauthorized("invalid or revoked token")
        cache.put(token, user)
    wait = await limits.requests.check(user.id)
    if wait:
        raise RateLimited(
            f"over {limits.requests.capacity:g} requests a minute for this user",
            limit_name="requests",
            retry_after=wait,
        )
    return user


STATE_KEY = "cnnlab_user"


@dataclass(frozen=True)
class RouteLabel:
    """The ``route`` a refused request would have reached, for the request metrics' labels."""

    path: str


class TokenGate:
    """Pure ASGI: every request under ``prefix`` is authenticated before anything reads its
    body; a refused one is answered here (401 or 429) without reading it."""

    def __init__(self, app: ASGIApp, fastapi_app: Any, prefix: str = "/v1/") -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.prefix = prefix
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def route_label(self, path: str) -> RouteLabel | None:
        """The path template ``path`` matches (as the OpenAPI document lists them; paths
        without parameters first, as the routes are declared), or None."""
        if self._templates is None:
            paths = sorted(self.fastapi_app.openapi()["paths"], key=lambda p: "{" in p)
            self._templates = [(compile_path(p)[0], p) for p in paths]
        for pattern, template in self._templates:
            if pattern.fullmatch(path):
                return RouteLabel(template)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        client = scope.get("client")
        address = client[0] if client else "unknown"
        try:
            user = await authenticate_request(self.fastapi_app, authorization, address)
        except CnnlabError as exc:
            label = self.route_label(str(scope["path"]))
            if label is not None:
                scope["route"] = label
            headers = getattr(exc, "headers", None)
            response = JSONResponse(error_body(exc), status_code=exc.status_code, headers=headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = user
        await self.app(scope, receive, send)
