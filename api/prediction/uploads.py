"""Prediction inputs read from a request within the documented limits (413 past them).

The body is read in chunks and abandoned as soon as it is over the request limit, before any
parsing, so an oversized upload costs no more than the limit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from api.config import ApiSettings
from api.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from api.prediction.limits import too_large
from api.schemas import PredictInstances
from cnnlab.catalog import DATASETS


@dataclass
class Images:
    """Encoded image files (PNG, JPEG, ...), in upload order."""

    blobs: list[bytes]
    names: list[str]


@dataclass
class Arrays:
    """Pixel arrays from a JSON body."""

    instances: list[Any]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
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
    body = await read_body(request, limits.predict_max_request_bytes)
    if content_type == "application/json":
        return _parse_json(body, limits)
    return await _parse_multipart(request, body, limits)


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


async def _single(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def _parse_multipart(request: Request, body: bytes, limits: ApiSettings) -> Images:
    # The body is already bounded, so the parser's own file count limit can stay out of the way;
    # the count is checked below for a 413 of our own.
    parser = MultiPartParser(request.headers, _single(body), max_files=len(body) + 1)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest("body", f"malformed multipart body ({exc.message})") from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise InvalidRequest("files", "no image files: send them as multipart field `files`")
        if len(files) > limits.predict_max_images:
            raise _too_many(len(files), limits.predict_max_images)
        blobs, names = [], []
        for index, upload in enumerate(files):
            data = await upload.read()
            if len(data) > limits.predict_max_file_bytes:
                raise PayloadTooLarge(
                    f"file {index} ({upload.filename}) is {len(data)} bytes; "
                    f"at most {limits.predict_max_file_bytes}",
                    item=index,
                    limit=limits.predict_max_file_bytes,
                    limit_name="file",
                )
            blobs.append(data)
            names.append(upload.filename or f"files[{index}]")
        return Images(blobs, names)
    finally:
        await form.close()
