"""Work over a thread pool in chunks: with Pillow, which releases the GIL while it decodes and
resizes, threads decode in parallel, and they work inside a Celery worker (whose children,
being daemonic, may not start processes of their own)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")

CHUNK = 32  # items handed to a thread at once


def chunks(items: Iterable[_T], size: int = CHUNK) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def map_chunks(
    fn: Callable[[list[_T]], list[_R]],
    parts: Iterable[list[_T]],
    workers: int,
    on_done: Callable[[int], None] = lambda n: None,
) -> list[_R]:
    """``fn`` over each chunk of ``parts``, on ``workers`` threads (none for one), the results
    in order; ``on_done(n)`` in this thread as each chunk's ``n`` results come. Chunks, not single
    items, go to the threads, so waiting and waking cost little next to the work; at most two
    chunks a thread wait, while this thread produces the next (reading an archive, say). The
    first exception a chunk raises is raised here, and chunks not started are dropped."""
    results: list[_R] = []
    if workers == 1:
        for chunk in parts:
            results += fn(chunk)
            on_done(len(chunk))
        return results
    with ThreadPoolExecutor(workers, thread_name_prefix="ingest") as pool:
        pending: deque[Future[list[_R]]] = deque()
        try:
            for chunk in parts:
                pending.append(pool.submit(fn, chunk))
                while len(pending) >= 2 * workers:
                    done = pending.popleft().result()  # a decompression bomb raises here
                    results += done
                    on_done(len(done))
            while pending:
                done = pending.popleft().result()
                results += done
                on_done(len(done))
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return results
