"""Who is calling: bearer tokens checked against the store, with a short in-process cache.

Checking a token costs a database query and a trip to the threadpool; a busy client sends the
same token many times a second. Known tokens are remembered for ``auth_cache_seconds``, so a
revoked token stops working in this process within that time (0 turns the cache off).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cnnlab.store.users import authenticate, hash_token

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str


class AuthCache:
    def __init__(self, ttl_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[CurrentUser, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> CurrentUser | None:
        if self.ttl <= 0:
            return None
        key = hash_token(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._entries[key]
                return None
            return entry[0]

    def put(self, token: str, user: CurrentUser) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[hash_token(token)] = (user, time.monotonic() + self.ttl)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def lookup(session: Session, token: str) -> CurrentUser | None:
    """The token's user from the store (None for an unknown or revoked token)."""
    user = authenticate(session, token)
    return None if user is None else CurrentUser(user.id, user.name)
