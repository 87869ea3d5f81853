"""Request limits: token buckets per key, and counters of open things per key.

The request rate (per user, all of the user's tokens together) and the failed token checks (per
client address) are token buckets. When the broker is Redis they live there
(:class:`RedisTokenBuckets`, one atomic script per check), so every API process shares them: a
limit is the cluster's. With the embedded broker (one host) each process keeps its own
(:class:`TokenBuckets`): with K processes a client gets up to K times each limit. Open event
streams and predictions in progress are counted per process (:class:`Slots`).

In-process counters are checked on the event loop (one thread), so they need no locks; the
number of keys kept is bounded (least recently used forgotten first), so a flood of new keys
costs memory only up to that bound.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import redis.asyncio

from cnnlab.errors import CnnlabError
from cnnlab.lru import LRU
from cnnlab.settings import Settings

logger = logging.getLogger(__name__)

MAX_KEYS = 100_000
# Seconds the shared limits count per process after Redis failed to answer, before trying again.
RETRY_REDIS_S = 5.0


class RateLimited(CnnlabError):
    """429 with ``Retry-After``: ``limit_name`` says which limit, ``retry_after`` when to."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, limit_name: str, retry_after: float, **details: Any):
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, limit_name=limit_name, retry_after=seconds, **details)
        self.headers = {"Retry-After": str(seconds)}


class Overloaded(CnnlabError):
    """503 with ``Retry-After``: this process is serving as many of these requests as it may."""

    code = "overloaded"
    status_code = 503

    def __init__(self, message: str, *, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.headers = {"Retry-After": str(retry_after)}


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class TokenBuckets:
    """``per_minute`` events per key and minute, in bursts of up to ``per_minute``: each key's
    bucket holds that many tokens and refills continuously at ``per_minute / 60`` a second.
    ``per_minute`` 0 turns the limit off."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: LRU[Hashable, _Bucket] = LRU(max_keys)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def _bucket(self, key: Hashable) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            self._buckets.put(key, bucket)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def take(self, key: Hashable) -> float:
        """Take a token for ``key``: 0 if it had one, else the seconds until it will (nothing
        taken)."""
        if not self.enabled:
            return 0.0
        bucket = self._bucket(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def check(self, key: Hashable) -> float:
        """:meth:`take`, with the shared buckets' signature."""
        return self.take(key)


class Buckets(Protocol):
    capacity: float

    async def check(self, key: Hashable) -> float:
        """Take a token for ``key``: 0 if it had one, else the seconds until it will."""
        ...


# A token bucket in one Redis hash: tokens and the time they were counted; refilled, then taken
# from, atomically. Redis' own clock, so API hosts' clocks need not agree. Returns the wait.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(held[1]) or capacity
local stamp = tonumber(held[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisTokenBuckets:
    """:class:`TokenBuckets` kept in Redis, shared by every API process using it. Should Redis
    not answer, the checks fall back to this process's own buckets for :data:`RETRY_REDIS_S`
    (and say so in the log), so an outage costs no request a timeout after the first."""

    def __init__(self, url: str, name: str, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.prefix = f"cnnlab:limits:{name}:"
        self.url = url
        self.local = TokenBuckets(per_minute)
        self._client: Any = None
        self._script: Any = None
        self._down_until = float("-inf")

    async def check(self, key: Hashable) -> float:
        if self.capacity <= 0:
            return 0.0
        if time.monotonic() < self._down_until:
            return self.local.take(key)
        try:
            if self._script is None:
                self._client = redis.asyncio.Redis.from_url(
                    self.url, socket_timeout=1.0, socket_connect_timeout=1.0
                )
                self._script = self._client.register_script(_TAKE)
            wait = await self._script(keys=[f"{self.prefix}{key}"], args=[self.capacity, self.rate])
            return float(wait)
        except Exception as exc:  # Redis down: limit per process rather than not at all
            logger.warning("rate limits: Redis unavailable (%s); counting per process", exc)
            self._down_until = time.monotonic() + RETRY_REDIS_S
            await self.aclose()
            return self.local.take(key)

    async def aclose(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):  # a connection already broken: nothing to do
                await client.aclose()


class Recent:
    """Keys seen within the last ``ttl`` seconds (at most ``max_keys`` of them)."""

    def __init__(
        self, ttl: float, *, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._until: LRU[Hashable, float] = LRU(max_keys)

    def add(self, key: Hashable) -> None:
        self._until.put(key, self.clock() + self.ttl)

    def __contains__(self, key: Hashable) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until < self.clock():
            self._until.pop(key)
            return False
        return True


class Slots:
    """At most ``limit`` things open per key (streams per user, predictions per process).

    :meth:`acquire` returns a release function, idempotent, or None when the key is full.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[Hashable, int] = {}

    def count(self, key: Hashable) -> int:
        return self._open.get(key, 0)

    def acquire(self, key: Hashable) -> Callable[[], None] | None:
        held = self._open.get(key, 0)
        if held >= self.limit:
            return None
        self._open[key] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(key, 1) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)

        return release


def shared_through_redis(settings: Settings) -> bool:
    """Whether request limits are shared by all API processes (the broker is Redis)."""
    return settings.broker_url.startswith(("redis://", "rediss://"))


def buckets(settings: Settings, name: str, per_minute: int) -> Buckets:
    if shared_through_redis(settings):
        return RedisTokenBuckets(settings.broker_url, name, per_minute)
    return TokenBuckets(per_minute)


class AppLimits:
    """One app's limiters, made from its settings on first use (see :func:`app_limits`)."""

    def __init__(self, settings: Settings) -> None:
        # Per user (all the user's tokens together), and per client address.
        self.requests = buckets(settings, "requests", settings.rate_limit_per_minute)
        self.auth_failures = buckets(settings, "auth_failures", settings.auth_failures_per_minute)
        # Tokens found unknown or revoked within the last minute (by hash): one sent again is
        # 401 at once, without a query, and is no new guess.
        self.failed_tokens = Recent(60.0)
        self.streams = Slots(settings.max_event_streams)
        self.predictions = Slots(settings.max_concurrent_predictions)


async def close_limits(app: Any) -> None:
    """Close the app's connections to Redis (when the app shuts down)."""
    limits: AppLimits | None = getattr(app.state, "limits", None)
    if limits is not None:
        for bucket in (limits.requests, limits.auth_failures):
            if isinstance(bucket, RedisTokenBuckets):
                await bucket.aclose()


def app_limits(app: Any) -> AppLimits:
    limits: AppLimits | None = getattr(app.state, "limits", None)
    if limits is None:
        limits = app.state.limits = AppLimits(app.state.settings)
    return limits
