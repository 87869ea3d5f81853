"""A lean HTTP/1.1 client for the service figures: keep-alive connections, each request built
once as bytes, each response read by its ``Content-Length``.

The figures are the server's: an HTTP library's client spends more CPU per request than the
routes it would be timing, and here it shares the machine's cores with the server. Requests are
encoded before the clock starts, so a 64-image JSON body is not re-encoded per request either.
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

from bench.runner import RunFailed


class HttpError(RunFailed):
    """An answer the figures cannot use (reported like any failed benchmark run)."""


def build(
    url: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    """One request as it goes on the wire."""
    host = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body or method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _head(raw: bytes) -> tuple[int, int]:
    """The status and the body length of a response head (``Content-Length`` required)."""
    status_line, *header_lines = raw.split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value)
    raise HttpError(f"no Content-Length in the response: {raw[:200]!r}")


class Connection:
    """A blocking keep-alive connection, one request at a time (for latencies)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, length = _head(head)
        while len(self.buf) < length:
            self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise HttpError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def latencies(url: str, raw: bytes, n: int, warmup: int = 10) -> list[float]:
    """Seconds for each of ``n`` requests, one after another on one connection; each must be
    answered 200."""
    out = []
    with Connection(url) as conn:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            status, body = conn.request(raw)
            elapsed = time.perf_counter() - t0
            if status != 200:
                raise HttpError(f"answered {status}: {body[:300]!r}")
            if i >= warmup:
                out.append(elapsed)
    return out


def requests_per_second(url: str, raw: bytes, connections: int = 8, seconds: float = 4.0) -> float:
    """Closed-loop load: ``connections`` keep-alive connections, each sending its next request
    as soon as the last is answered, for ``seconds``. Every answer must be 200."""
    parts = urlsplit(url)

    async def one(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        count = 0
        try:
            while time.perf_counter() < deadline:
                writer.write(raw)
                status, length = _head((await reader.readuntil(b"\r\n\r\n"))[:-4])
                body = await reader.readexactly(length)
                if status != 200:
                    raise HttpError(f"answered {status}: {body[:300]!r}")
                count += 1
        finally:
            writer.close()
        return count

    async def main() -> int:
        deadline = time.perf_counter() + seconds
        return sum(await asyncio.gather(*(one(deadline) for _ in range(connections))))

    t0 = time.perf_counter()
    total = _run(main())
    return total / (time.perf_counter() - t0)


def _run(coro: object) -> int:
    try:
        import uvloop  # a dependency of the server; the client uses it too where present
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
