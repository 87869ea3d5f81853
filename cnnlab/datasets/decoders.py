"""Decoding spread over processes: this one and helpers it starts.

Processes, not threads: a small picture decodes in about a tenth of a millisecond, so the Python
work around each decode (Pillow reading the header, the numpy array), which holds the GIL, is
most of the cost, and a second thread made ingest slower (10,000 JPEGs of 24–96 px: 0.75× one
thread). Helpers are started with :mod:`subprocess`, not :mod:`multiprocessing`: a Celery pool
process is daemonic and may not have multiprocessing children. Each helper runs
:mod:`cnnlab.datasets.decoder_process` (numpy and Pillow; no torch), reads pickled requests on
its stdin and writes pickled answers on its stdout; it exits when its stdin closes, so it
outlives neither its parent nor a killed one.

A *decoder* takes requests one after another and keeps state between them (the pictures it
opened, for :data:`FINISH`). This process's own decoder runs each request at once, in the
caller's thread; a helper's runs while the caller goes on (reading the archive, decoding its own
share), and :func:`map_requests` prefers a helper with room.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import IO, Any, TypeVar

from cnnlab.datasets import decode
from cnnlab.errors import InvalidDataset

_T = TypeVar("_T")

CHUNK = 32  # files in one request
IN_FLIGHT = 2  # requests a helper holds at once: one it works on, one waiting
# Below this many files a helper's start (~0.1 s) costs more than it saves.
HELPERS_FROM_FILES = 1000

# Requests: (OPEN, [(index, name, bytes)], max_pixels) keeps each picture opened (header read)
# and answers (index, shorter side or Skipped); (FINISH, [index], size, resize) decodes the kept
# ones; (DECODE, [(index, name, bytes)], size, resize, max_pixels, cap) both in one go;
# (FIT, [(index, pixels)], size, resize) brings reduced pixels to the size.
OPEN, FINISH, DECODE, FIT = "open", "finish", "decode", "fit"

Answer = list[tuple[int, Any]]


def handle(state: dict[int, Any], request: tuple[Any, ...]) -> Answer:
    """One request's answer; ``state`` is the decoder's (pictures opened, not yet finished)."""
    op = request[0]
    if op == OPEN:
        _, items, max_pixels = request
        out: Answer = []
        for i, name, data in items:
            im = decode.open_image(data, name, max_pixels)
            if isinstance(im, decode.Skipped):
                out.append((i, im))
            else:
                state[i] = im
                out.append((i, min(im.size)))
        return out
    if op == FINISH:
        _, indices, size, resize = request
        return [(i, decode.decode_opened(state.pop(i), size, resize)) for i in indices]
    if op == DECODE:
        _, items, size, resize, max_pixels, cap = request
        return [
            (i, decode.decode(data, name, size, resize, max_pixels, cap)) for i, name, data in items
        ]
    if op == FIT:
        _, items, size, resize = request
        return [(i, decode.fit_pixels(pixels, size, resize)) for i, pixels in items]
    raise ValueError(f"unknown decoding request {op!r}")


def error_answer(exc: BaseException) -> tuple[str, Any]:
    if isinstance(exc, InvalidDataset):
        return ("invalid", (exc.message, exc.details))
    return ("error", f"{type(exc).__name__}: {exc}")


class Decoder:
    """This process's decoder: each request runs when submitted."""

    def __init__(self) -> None:
        self.state: dict[int, Any] = {}
        self.in_flight = 0

    def submit(self, request: tuple[Any, ...]) -> Future[Answer]:
        done: Future[Answer] = Future()
        try:
            done.set_result(handle(self.state, request))
        except BaseException as exc:
            done.set_exception(exc)
        return done

    def close(self) -> None:
        self.state.clear()


class HelperDecoder(Decoder):
    """A helper process's decoder; a thread of this process writes each request and reads its
    answer (pipe I/O, which releases the GIL)."""

    def __init__(self) -> None:
        super().__init__()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cnnlab.datasets.decoder_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.io = ThreadPoolExecutor(1, thread_name_prefix="decoder")
        self._lock = threading.Lock()

    def submit(self, request: tuple[Any, ...]) -> Future[Answer]:
        with self._lock:
            self.in_flight += 1
        future = self.io.submit(self._exchange, request)
        future.add_done_callback(self._landed)
        return future

    def _landed(self, _: Future[Answer]) -> None:
        with self._lock:
            self.in_flight -= 1

    def _exchange(self, request: tuple[Any, ...]) -> Answer:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            pickle.dump(request, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
            kind, value = pickle.load(stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            code = self.process.poll()
            raise RuntimeError(f"a decoding process ended (exit status {code})") from exc
        if kind == "ok":
            return value
        if kind == "invalid":
            message, details = value
            raise InvalidDataset(message, **details)
        raise RuntimeError(f"a decoding process failed: {value}")

    def close(self) -> None:
        self.io.shutdown(wait=False, cancel_futures=True)
        for pipe in (self.process.stdin, self.process.stdout):
            _close_quietly(pipe)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _close_quietly(pipe: IO[bytes] | None) -> None:
    if pipe is not None:
        with suppress(OSError):
            pipe.close()


@contextmanager
def decoders(count: int, files: int) -> Iterator[list[Decoder]]:
    """This process's decoder and ``count - 1`` helpers (none for fewer than
    :data:`HELPERS_FROM_FILES` files); the helpers are stopped on leaving, whatever happened."""
    helpers = max(0, count - 1) if files >= HELPERS_FROM_FILES else 0
    started: list[Decoder] = [Decoder()]
    try:
        for _ in range(helpers):
            started.append(HelperDecoder())
        yield started
    finally:
        for decoder in started:
            decoder.close()


def map_requests(
    decoders: list[Decoder],
    requests: Iterable[tuple[Any, ...]],
    on_done: Callable[[int], None] = lambda n: None,
    route: Iterable[int] | None = None,
) -> tuple[Answer, list[int]]:
    """Each request's answer, concatenated in the requests' order, and which decoder took each
    request. Without ``route`` a request goes to the first helper with room, else to this
    process's decoder; with it, request ``k`` goes to ``decoders[route[k]]`` (where a
    :data:`FINISH` must go: the decoder that opened its pictures). ``on_done(n)`` is called in
    this thread as each request's ``n`` answers come. The first exception a request raises is
    raised here."""
    answers: Answer = []
    taken: list[int] = []
    pending: deque[Future[Answer]] = deque()
    routes = iter(route) if route is not None else None
    helpers = decoders[1:]

    def collect(block: bool) -> None:
        while pending and (block or pending[0].done()):
            done = pending.popleft().result()
            answers.extend(done)
            on_done(len(done))

    try:
        for request in requests:
            if routes is not None:
                which = next(routes)
            else:
                free = [k for k, h in enumerate(helpers, 1) if h.in_flight < IN_FLIGHT]
                which = free[0] if free else 0
            taken.append(which)
            pending.append(decoders[which].submit(request))
            collect(block=False)
        collect(block=True)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return answers, taken


def chunks(items: Iterable[_T], size: int = CHUNK) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
