"""Prediction inputs read from a request within the documented limits (413 past them).

The body is read in chunks and abandoned as soon as it is over the request limit, or (multipart)
holds more parts than a request may, before any parsing, so an oversized upload costs no more
than the limit. Multipart bodies are parsed in a worker thread; image files must be PNG or JPEG
by their first bytes (415 otherwise), whatever their declared type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from api.prediction import multipart
from api.prediction.limits import too_large
from api.prediction.multipart import (
    MAX_OTHER_PARTS,
    DelimiterCounter,
    Limits,
    boundary_of,
    too_many_parts,
)
from api.schemas import PredictInstances
from api.settings import ApiSettings
from cnnlab.datasets.catalog import DATASETS


@dataclass
class Images:
    """Encoded image files (PNG or JPEG), in upload order."""

    blobs: list[bytes]
    names: list[str]


@dataclass
class Arrays:
    """Pixel arrays from a JSON body."""

    instances: list[Any]


async def read_body(
    request: Request, limit: int, parts: DelimiterCounter | None = None, max_parts: int = 0
) -> bytes:
    """The body, at most ``limit`` bytes; with ``parts``, at most ``max_parts`` multipart parts,
    counted as the chunks arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        if parts is not None and parts.feed(chunk) > max_parts + 1:
            raise too_many_parts(parts.parts, max_parts)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_many(count: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{count} images in one request; at most {limit}", limit=limit, limit_name="images"
    )


async def read_prediction_input(request: Request, limits: ApiSettings) -> Images | Arrays:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("multipart/form-data", "application/json"):
        raise UnsupportedMediaType(
            "send multipart/form-data with `files`, or application/json with `instances`",
            content_type=content_type or None,
        )
    if content_type == "application/json":
        return _parse_json(await read_body(request, limits.predict_max_request_bytes), limits)
    return await _read_multipart(request, limits)


# Values one image may hold as JSON: the largest dataset's C×H×W, and room for the separators
# between rows and instances.
_IMAGE_VALUES = max(c * h * w for c, h, w in (meta.shape for meta in DATASETS.values())) + 64


def _parse_json(body: bytes, limits: ApiSettings) -> Arrays:
    # Parsing holds the interpreter for as long as it takes (a thread would not let the event loop
    # run either): 24 MB of small numbers took 2 s. Each value but the last is followed by a
    # comma, so counting them first bounds that work to what the image limit allows.
    max_values = limits.predict_max_images * _IMAGE_VALUES
    if body.count(b",") > max_values:
        raise PayloadTooLarge(
            f"JSON body holds over {max_values} values: at most {limits.predict_max_images} "
            f"images of up to {_IMAGE_VALUES} values each",
            limit=max_values,
            limit_name="values",
        )
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest("body", f"not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidRequest("body", "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidRequest("body", f"unreadable JSON ({exc})") from None
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        count = len(doc["instances"])
        if count > limits.predict_max_images:
            raise _too_many(count, limits.predict_max_images)
    try:
        parsed = PredictInstances.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidRequest(field, err["msg"]) from None
    return Arrays(parsed.instances)


# The first bytes of the formats a prediction takes (a file claiming to be one of them but not
# decodable is a 422 naming it; anything else is 415).
_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG"}


def image_format(blob: bytes) -> str | None:
    """``"PNG"`` or ``"JPEG"`` by the file's first bytes, else None."""
    for magic, name in _MAGIC.items():
        if blob.startswith(magic):
            return name
    return None


async def _read_multipart(request: Request, limits: ApiSettings) -> Images:
    header = request.headers.get("content-type", "")
    max_parts = limits.predict_max_images + MAX_OTHER_PARTS
    counter = DelimiterCounter(boundary_of(header))
    body = await read_body(request, limits.predict_max_request_bytes, counter, max_parts)
    part_limits = Limits(
        max_files=limits.predict_max_images,
        max_file_bytes=limits.predict_max_file_bytes,
        too_many_files=lambda n: _too_many(n, limits.predict_max_images),
    )
    files = await run_in_threadpool(multipart.parse, header, body, part_limits)
    if not files:
        raise InvalidRequest("files", "no image files: send them as multipart field `files`")
    blobs, names = [], []
    for index, part in enumerate(files):
        name = part.filename or f"files[{index}]"
        if image_format(bytes(part.data[:8])) is None:
            raise UnsupportedMediaType(
                f"file {index} ({name}) is not a PNG or JPEG image",
                item=index,
                filename=name,
            )
        blobs.append(bytes(part.data))
        names.append(name)
    return Images(blobs, names)
