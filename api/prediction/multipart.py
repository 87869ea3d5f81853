"""Multipart prediction bodies: parts counted while the body arrives, parsed in a worker thread.

A multipart body of many tiny parts is cheap to send and costly to parse (python-multipart calls
back into Python for every part): 250,000 parts held the event loop for seconds. So the body's
delimiters are counted as its chunks arrive (``bytes.count``, at memory speed), and a body with
more parts than a request may hold is refused before any parsing. The parts of a body within the
limits are then parsed synchronously, off the event loop, with the per-file and per-field limits
checked as each part's bytes come.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from api.errors import InvalidRequest, PayloadTooLarge

# Parts a prediction body may hold besides its image files (a client may add a field or two).
MAX_OTHER_PARTS = 8
# Bytes of a part that is not an image file (its value is never used).
MAX_FIELD_BYTES = 64 * 1024


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary named in a Content-Type header (422 without one)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest("body", "malformed multipart body (no boundary in Content-Type)")
    return boundary


class DelimiterCounter:
    """Counts ``--boundary`` in a body fed chunk by chunk (a delimiter may straddle two chunks).

    A body of N parts holds N + 1 delimiters (the last one closes it). Any file's bytes could hold
    the delimiter too, but a client picks its boundary so that none does.
    """

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"--" + boundary
        self.count = 0
        self._tail = b""

    def feed(self, chunk: bytes) -> int:
        data = self._tail + chunk
        self.count += data.count(self.delimiter)
        # Keep what could be the start of a delimiter that ends in the next chunk: one byte
        # short of a whole one, so no delimiter is counted twice.
        keep = len(self.delimiter) - 1
        self._tail = data[-keep:]
        return self.count

    @property
    def parts(self) -> int:
        return max(0, self.count - 1)


@dataclass
class Part:
    name: str
    filename: str | None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Limits:
    max_files: int  # parts named ``files`` with a file name
    max_file_bytes: int
    too_many_files: Callable[[int], Exception]


def too_many_parts(count: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"multipart body holds over {limit} parts (images and other fields); at most {limit}",
        limit=limit,
        limit_name="parts",
        parts=count,
    )


class _Collector:
    """python-multipart's callbacks, collecting parts within the limits."""

    def __init__(self, limits: Limits, charset: str) -> None:
        self.limits = limits
        self.charset = charset
        self.files: list[Part] = []
        self.others = 0
        self._part: Part | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def on_part_begin(self) -> None:
        self._part = None
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidRequest("body", "malformed multipart body (a part without a name)")
        name = options[b"name"].decode(self.charset, errors="replace")
        filename = options.get(b"filename")
        part = Part(name, None if filename is None else filename.decode(self.charset, "replace"))
        if part.name == "files" and part.filename is not None:
            self.files.append(part)
            if len(self.files) > self.limits.max_files:
                raise self.limits.too_many_files(len(self.files))
        else:
            self.others += 1
            if self.others > MAX_OTHER_PARTS:
                raise too_many_parts(len(self.files) + self.others, self.max_parts)
        self._part = part

    @property
    def max_parts(self) -> int:
        return self.limits.max_files + MAX_OTHER_PARTS

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part is None:
            return
        part.data += data[start:end]
        if part.filename is not None and part.name == "files":
            if len(part.data) > self.limits.max_file_bytes:
                index = len(self.files) - 1
                raise PayloadTooLarge(
                    f"file {index} ({part.filename}) is over {self.limits.max_file_bytes} bytes",
                    item=index,
                    filename=part.filename,
                    limit=self.limits.max_file_bytes,
                    limit_name="file",
                )
        elif len(part.data) > MAX_FIELD_BYTES:
            raise PayloadTooLarge(
                f"multipart field {part.name!r} is over {MAX_FIELD_BYTES} bytes",
                limit=MAX_FIELD_BYTES,
                limit_name="field",
            )

    def on_part_end(self) -> None:
        self._part = None


def parse(content_type: str, body: bytes, limits: Limits) -> list[Part]:
    """The image files (parts named ``files`` with a file name) of a multipart body, in order.

    Synchronous and CPU-bound: call it in a worker thread. 413 past a limit, 422 for a body that
    is not well-formed multipart."""
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    collector = _Collector(limits, charset)
    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidRequest("body", f"malformed multipart body ({exc})") from None
    return collector.files
