"""Decoding helper processes answer exactly as this process does, carry its errors back, and
never outlive their use."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from cnnlab.datasets import decoders
from cnnlab.datasets.decode import Decoded, Skipped
from cnnlab.datasets.decoders import DECODE, FINISH, FIT, OPEN, Decoder, HelperDecoder
from cnnlab.errors import InvalidDataset
from tests.utils.image_archives import encode, picture, real_images

pytestmark = pytest.mark.slow  # starts helper processes


def _files() -> list[tuple[int, str, bytes]]:
    """Real pictures of several sizes and formats, and two files that are no picture."""
    files = []
    for i, (_, pixels) in enumerate(real_images(4, [0, 1])):
        fmt = ("png", "jpeg", "webp")[i % 3]
        files.append(
            (i, f"c/{i}.{fmt}", encode(picture(pixels, 28 + 9 * i, colour=i % 2 == 1), fmt))
        )
    return [*files, (90, "c/empty.png", b""), (91, "c/note.png", b"hello")]


def _same(ours: list[tuple[int, object]], theirs: list[tuple[int, object]]) -> None:
    assert [i for i, _ in ours] == [i for i, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        if isinstance(a, Decoded):
            assert isinstance(b, Decoded) and np.array_equal(a.pixels, b.pixels)
            assert (a.grey, a.shorter_side) == (b.grey, b.shorter_side)
        else:
            assert a == b


def test_a_helper_answers_every_request_as_this_process_does() -> None:
    files = _files()
    here, helper = Decoder(), HelperDecoder()
    try:
        for request in [
            (OPEN, files, 10**6),
            (FINISH, [i for i, _, data in files if data[:1] not in (b"", b"h")], 30, "pad"),
            (DECODE, files, 32, "center_crop", 10**6, 64),
            (DECODE, files, None, "squash", 10**6, 40),
        ]:
            _same(here.submit(request).result(), helper.submit(request).result(timeout=30))
        pixels = [(i, np.full((20 + i, 30, 3), i, np.uint8)) for i in range(3)]
        fitted = helper.submit((FIT, pixels, 24, "center_crop")).result(timeout=30)
        local = here.submit((FIT, pixels, 24, "center_crop")).result()
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(fitted, local, strict=True))
        assert [p.shape for _, p in fitted] == [(24, 24, 3)] * 3
        skipped = dict(helper.submit((OPEN, files[-2:], 10**6)).result(timeout=30))
        assert skipped == {90: Skipped("zero bytes"), 91: Skipped("not an image")}
    finally:
        helper.close()


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_bomb_met_in_a_helper_is_refused_here_naming_the_file() -> None:
    helper = HelperDecoder()
    try:
        with pytest.raises(InvalidDataset, match="a decompression bomb") as caught:
            helper.submit((OPEN, [(0, "c/huge.png", _png_header(30_000, 30_000))], 10**6)).result(
                timeout=30
            )
        assert caught.value.details["entry"] == "c/huge.png"
        # The helper goes on answering after a refused request.
        assert helper.submit((OPEN, _files()[:1], 10**6)).result(timeout=30)[0][0] == 0
    finally:
        helper.close()


def test_a_helper_that_dies_is_an_error_not_a_hang() -> None:
    helper = HelperDecoder()
    try:
        helper.process.kill()
        helper.process.wait()
        with pytest.raises(RuntimeError, match="a decoding process ended"):
            helper.submit((DECODE, _files(), 28, "squash", 10**6, 64)).result(timeout=30)
    finally:
        helper.close()


def test_helpers_start_only_for_enough_files_and_stop_on_leaving_whatever_happened() -> None:
    with decoders.decoders(3, decoders.HELPERS_FROM_FILES - 1) as lanes:
        assert [type(d) for d in lanes] == [Decoder]
    with pytest.raises(KeyError), decoders.decoders(3, decoders.HELPERS_FROM_FILES) as lanes:
        started = [d for d in lanes if isinstance(d, HelperDecoder)]
        assert len(started) == 2 and all(d.process.poll() is None for d in started)
        raise KeyError("an ingest that failed midway")
    assert all(d.process.returncode is not None for d in started)


def test_requests_are_answered_in_order_wherever_they_ran() -> None:
    files = _files()[:-2]
    with decoders.decoders(2, decoders.HELPERS_FROM_FILES) as lanes:
        requests = [(DECODE, [f], 28, "squash", 10**6, 64) for f in files]
        answers, taken = decoders.map_requests(lanes, requests)
        routed, again = decoders.map_requests(lanes, requests, route=[0, 1] * len(files))
    assert [i for i, _ in answers] == [i for i, _, _ in files] == [i for i, _ in routed]
    assert 1 in taken and again == [0, 1] * (len(files) // 2)
