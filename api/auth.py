"""Who is calling: bearer tokens checked against the store, with a short in-process cache.

Checking a token costs a database query and a trip to the threadpool; a busy client sends the
same token many times a second. Known tokens are remembered for ``auth_cache_seconds``, so a
revoked token stops working in this process within that time (0 turns the cache off).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cnnlab.lru import LRU
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
