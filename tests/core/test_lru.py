"""The least-recently-used map the API's caches share."""

from __future__ import annotations

import threading
from functools import partial

from cnnlab.lru import LRU


def test_least_recently_used_goes_first_and_lookups_are_counted() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None and len(cache) == 2
    assert (cache.hits, cache.misses, cache.loads) == (1, 1, 0)
    assert cache.pop("a") == 1 and cache.pop("a") is None
    cache.clear()
    assert len(cache) == 0


def test_get_loads_a_missing_value_once() -> None:
    cache: LRU[str, int] = LRU(4)
    made: list[str] = []

    def load() -> int:
        made.append("x")
        return 7

    assert cache.get("x", load) == 7 and cache.get("x", load) == 7
    assert made == ["x"] and (cache.hits, cache.misses, cache.loads) == (1, 1, 1)


def test_threads_share_one_map() -> None:
    cache: LRU[int, int] = LRU(8)

    def work(offset: int) -> None:
        for i in range(500):
            key = (i + offset) % 16
            cache.get(key, partial(int.__mul__, key, 2))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8 and cache.hits + cache.misses == 2000
    assert all(cache.get(k) in (None, k * 2) for k in range(16))
