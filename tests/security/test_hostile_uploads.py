"""Careless and hostile prediction inputs: images and pixel arrays that cannot be used are a 422
naming which, uploads past the limits a 413, and nothing costs more than its limit."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
GOOD = [[0] * 28] * 28
LIMITS = ApiSettings(predict_max_images=4, predict_max_file_bytes=20_000)


@pytest.fixture
def small_limits(db_url: str) -> Iterator[ApiClient]:
    with ApiClient(create_app(api_settings=LIMITS)) as c:
        yield c


@pytest.fixture
def url(
    small_limits: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> str:
    job = small_limits.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
    give_model(db_url, job["id"], trained)
    return f"/v1/jobs/{job['id']}/predict"


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((height, width), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes whose header claims a ``width``×``height`` picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# (an instance, words the 422's message must contain). Each goes second, after a good one.
BAD_ARRAYS: list[tuple[str, Any, str]] = [
    ("ragged rows", [[0] * 28] * 27 + [[0] * 27], "row 27"),
    ("too few rows", [[0] * 28] * 27, "28 rows"),
    ("a string", "pixels", "a string"),
    ("null", None, "null"),
    ("a number", 7, "a number"),
    ("an object", {"data": GOOD}, "an object"),
    ("string pixels", [["0"] * 28] * 28, "a string"),
    ("null pixels", [[None] * 28] * 28, "null"),
    ("boolean pixels", [[True] * 28] * 28, "a boolean"),
    ("negative", [[-1] * 28] * 28, "0 to 255"),
    ("over 255", [[256] * 28] * 28, "0 to 255"),
    ("a huge integer", [[10**400] * 28] * 28, "0 to 255"),
    ("a huge float", [[1e300] * 28] * 28, "0 to 255"),
    ("colour for a grey model", [[[0, 0, 0]] * 28] * 28, "3 channels"),
    ("one level too deep", [[[[0]]] * 28] * 28, "a number from 0 to 255"),
    ("transposed", [[0] * 27] * 28, "row 0"),
]


@pytest.mark.parametrize(
    ("instance", "words"), [(i, w) for _, i, w in BAD_ARRAYS], ids=[n for n, _, _ in BAD_ARRAYS]
)
def test_a_bad_array_is_422_naming_the_item(
    small_limits: ApiClient, alice: Caller, url: str, instance: Any, words: str
) -> None:
    r = small_limits.post(url, json={"instances": [GOOD, instance]}, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "bad_input" and detail["item"] == 1, detail
    assert words in detail["message"], detail["message"]


RAW_ARRAY_BODIES = [
    ("NaN pixels", "[" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]", "bad_input"),
    ("Infinity pixel", "[[" + ",".join(["Infinity"] * 28) + "]]", "bad_input"),
    ("nested 100000 deep", "[" * 100_000 + "]" * 100_000, "invalid_request"),
    ("a 5000-digit pixel", "[[1" + "0" * 5000 + "]]", "invalid_request"),
]


@pytest.mark.parametrize(
    ("instance", "kind"),
    [(i, k) for _, i, k in RAW_ARRAY_BODIES],
    ids=[n for n, _, _ in RAW_ARRAY_BODIES],
)
def test_json_the_parser_struggles_with_is_422(
    small_limits: ApiClient, alice: Caller, url: str, instance: str, kind: str
) -> None:
    body = '{"instances": [' + instance + "]}"
    headers = {**alice.headers, "content-type": "application/json"}
    r = small_limits.post(url, content=body.encode(), headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["type"] == kind


def test_a_huge_instance_is_refused_at_its_first_wrong_row(
    small_limits: ApiClient, alice: Caller, url: str
) -> None:
    # 28 rows of 400 pixels each (within the values the image limit allows): refused at row 0
    # without walking the rest.
    wide = [[0] * 400] * 28
    r = small_limits.post(url, json={"instances": [wide]}, headers=alice.headers)
    assert r.status_code == 422 and "row 0" in r.json()["detail"]["message"]


def test_json_with_more_values_than_the_image_limit_allows_is_413_unparsed(
    small_limits: ApiClient, alice: Caller, url: str
) -> None:
    # 4 images of up to 3,136 values (CIFAR-10's 3,072 and separators): 12,544 at most.
    junk = {"instances": [GOOD], "padding": [0] * 13_000}
    r = small_limits.post(url, json=junk, headers=alice.headers)
    detail = r.json()["detail"]
    assert r.status_code == 413 and (detail["limit_name"], detail["limit"]) == ("values", 12_544)
    # The same document under the bound is parsed, and refused for what it holds.
    junk["padding"] = [0] * 11_000
    r = small_limits.post(url, json=junk, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "padding"
    # The largest request the limits allow stays under the bound: 4 CIFAR-10 images.
    colour = json.dumps({"instances": [[[[255, 255, 255]] * 32] * 32] * 4})
    assert colour.count(",") <= detail["limit"]


def test_a_decompression_bomb_is_refused_from_its_header(
    small_limits: ApiClient, alice: Caller, url: str
) -> None:
    bomb = _png_claiming(20_000, 20_000)  # 400 million pixels claimed in ~70 bytes
    files = [
        ("files", ("ok.png", _png(28, 28), "image/png")),
        ("files", ("bomb.png", bomb, "image/png")),
    ]
    start = time.perf_counter()
    r = small_limits.post(url, files=files, headers=alice.headers)
    assert time.perf_counter() - start < 2.0
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert (detail["item"], detail["filename"]) == (1, "bomb.png")
    assert "too large" in detail["message"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("truncated.png", _png(28, 28)[:40]),
        ("header-only.png", _png_claiming(28, 28)),
        ("zero-sized.png", _png_claiming(0, 0)),
    ],
)
def test_an_undecodable_file_is_422_naming_it(
    small_limits: ApiClient, alice: Caller, url: str, name: str, data: bytes
) -> None:
    files = [("files", ("ok.png", _png(28, 28), "image/png")), ("files", (name, data, "image/png"))]
    r = small_limits.post(url, files=files, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "bad_input" and (detail["item"], detail["filename"]) == (1, name)


@pytest.mark.parametrize(("name", "data"), [("empty.png", b""), ("text.png", b"hello, world")])
def test_a_file_that_is_not_png_or_jpeg_is_415_naming_it(
    small_limits: ApiClient, alice: Caller, url: str, name: str, data: bytes
) -> None:
    files = [("files", ("ok.png", _png(28, 28), "image/png")), ("files", (name, data, "image/png"))]
    r = small_limits.post(url, files=files, headers=alice.headers)
    assert r.status_code == 415, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "unsupported_media_type"
    assert (detail["item"], detail["filename"]) == (1, name)


def test_other_sizes_are_resized_not_refused(
    small_limits: ApiClient, alice: Caller, url: str
) -> None:
    # Up to 8× the model's input side (224 for 28 px models); past it, 422 (test_predict_inputs).
    sizes = [(1, 1), (224, 7)]
    files = [("files", (f"{w}x{h}.png", _png(w, h), "image/png")) for w, h in sizes]
    r = small_limits.post(url, files=files, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2


def test_uploads_past_the_limits_are_413(small_limits: ApiClient, alice: Caller, url: str) -> None:
    five = [("files", (f"{i}.png", _png(28, 28), "image/png")) for i in range(5)]
    r = small_limits.post(url, files=five, headers=alice.headers)
    assert r.status_code == 413 and r.json()["detail"]["limit_name"] == "images"

    r = small_limits.post(url, json={"instances": [GOOD] * 5}, headers=alice.headers)
    assert r.status_code == 413 and r.json()["detail"]["limit_name"] == "images"

    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")  # ~40 kB: over the 20 kB per file
    files = [
        ("files", ("ok.png", _png(28, 28), "image/png")),
        ("files", ("big.png", buf.getvalue(), "image/png")),
    ]
    r = small_limits.post(url, files=files, headers=alice.headers)
    detail = r.json()["detail"]
    assert r.status_code == 413 and (detail["limit_name"], detail["item"]) == ("file", 1)
