"""A bounded least-recently-used map, safe to share between threads.

The API keeps loaded models, confusion matrices and checked tokens in these; a notebook may use
one for anything costly to recompute.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``size`` items; the least recently used one goes first.

    ``hits`` and ``misses`` count lookups, ``loads`` the values made by :meth:`get`'s ``load``:
    they tell a cached answer from a recomputed one.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self.loads = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, load: Callable[[], V]) -> V: ...
    def get(self, key: K, load: Callable[[], V] | None = None) -> V | None:
        """The value for ``key``; on a miss, ``load()``'s value (then kept), or None."""
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
        if load is None:
            return None
        # Made outside the lock: one slow load must not stall the lookups of cached keys.
        value = load()
        with self._lock:
            self.loads += 1
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
