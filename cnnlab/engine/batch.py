"""Batch predictions: a registered model over many images, chunk by chunk, each input's
class, probability and top-k, or why it could not be read.

The worker's loop is :func:`scored_chunks`: one chunk is decoded on a thread pool while the
previous one goes through the model and its rows are written, so decoding (GIL-free in libpng
and Pillow), the forward pass (torch's own threads) and the rows' commit overlap."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from PIL import Image

from cnnlab.datasets.archives import batch_archive, batch_errors
from cnnlab.datasets.signature import check_images, of_checkpoint
from cnnlab.engine.predict import Predictor
from cnnlab.errors import BadInput

CHUNK = 512
# Items one decoding task takes: a task per image costs more in futures than its decode.
DECODE_TASK = 64

Item = tuple[int, str, "bytes | np.ndarray | None", "str | None"]  # index, file, input, error
Decoded: TypeAlias = (
    "np.ndarray | str | None"  # pixels, why they could not be had, or None (item's error)
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A PNG's colour type that is already the model's channels at 8 bits: greyscale, RGB.
PNG_COLOUR_TYPE = {1: 0, 3: 2}
PNG_MODE = {1: "L", 3: "RGB"}


@dataclass
class Timings:
    """Seconds of a run spent in each stage, as the worker's main thread saw them: decoding
    runs ahead on a pool and rows are written on a thread of their own, so ``decode`` and
    ``write`` are the waits for them."""

    setup: float = 0.0  # the model, the receipt, the input at hand
    read: float = 0.0
    decode: float = 0.0
    score: float = 0.0  # the forward pass and the rows
    write: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def line(self, count: int) -> str:
        total = time.perf_counter() - self.started
        return (
            f"{count} inputs in {total:.2f} s (setup {self.setup:.2f}, read {self.read:.2f}, "
            f"waiting for decode {self.decode:.2f}, score {self.score:.2f}, "
            f"write {self.write:.2f})"
        )


def archive_items(
    path: Path, start: int, max_files: int, max_uncompressed_bytes: int, max_ratio: float
) -> Iterator[Item]:
    """The archive's files from index ``start`` on (a zip's earlier ones are not read; their
    rows exist). A file with a problem of its own (too large, …) comes with it as its error; a
    hostile or damaged archive stops the run (:class:`BadArchive`)."""
    archive = batch_archive(path, max_files, max_uncompressed_bytes, max_ratio)
    with batch_errors():
        for index, entry, data in archive.members(start):
            yield index, entry.path, data, entry.problem


def dataset_items(ref: str, images: torch.Tensor, start: int) -> Iterator[Item]:
    for index in range(start, len(images)):
        yield index, f"{ref}/{index}", images[index].numpy(), None


def chunks(items: Iterator[Item], size: int | None = None) -> Iterator[list[Item]]:
    """Items in lists of ``size`` (default :data:`CHUNK`): one forward pass and one commit each."""
    size = size or CHUNK
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def scored_chunks(
    predictor: Predictor,
    items: Iterator[Item],
    top_k: int,
    size: int | None = None,
    timings: Timings | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Each chunk's rows (:func:`predict_chunk`), the next chunk decoding meanwhile."""
    timings = timings or Timings()
    source = chunks(items, size)

    def next_chunk() -> list[Item] | None:
        started = time.perf_counter()
        chunk = next(source, None)
        timings.read += time.perf_counter() - started
        return chunk

    with _split_threads() as decoders, ThreadPoolExecutor(decoders, "decode") as pool:
        chunk = next_chunk()
        pending = None if chunk is None else _decode_async(pool, predictor, chunk)
        while chunk is not None and pending is not None:
            ahead = next_chunk()
            following = None if ahead is None else _decode_async(pool, predictor, ahead)
            started = time.perf_counter()
            decoded = [image for part in pending for image in part.result()]
            timings.decode += time.perf_counter() - started
            started = time.perf_counter()
            rows = _rows(predictor, chunk, decoded, top_k)
            timings.score += time.perf_counter() - started
            yield rows
            chunk, pending = ahead, following


@contextmanager
def _split_threads() -> Iterator[int]:
    """The process's torch threads shared between decoding (the number given) and the forward
    pass (the rest, torch's own threads meanwhile): decoding and the forward pass run at the
    same time, and more threads than cores slow both down (2 cores: one each)."""
    threads = torch.get_num_threads()
    decoders = max(1, threads // 3)
    torch.set_num_threads(max(1, threads - decoders))
    try:
        yield decoders
    finally:
        torch.set_num_threads(threads)


def predict_chunk(predictor: Predictor, chunk: list[Item], top_k: int) -> list[dict[str, Any]]:
    """One row per item, in order: a decoded image's class, probability and ``top_k``
    (``[class, probability]`` pairs), or its ``error``."""
    return _rows(predictor, chunk, [decode_item(predictor, item) for item in chunk], top_k)


@torch.inference_mode()
def _rows(
    predictor: Predictor, chunk: list[Item], images: list[Decoded], top_k: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    decoded: list[np.ndarray] = []
    where: list[int] = []
    for (index, name, _, error), image in zip(chunk, images, strict=True):
        row: dict[str, Any] = {"index": index, "file": name[-1000:]}
        if isinstance(image, str):
            error = image
        elif error is None and image is not None:
            decoded.append(image)
            where.append(len(rows))
        if error is not None:
            row["error"] = error[:500]
        rows.append(row)
    if decoded:
        batch = torch.from_numpy(np.stack(decoded)).to(predictor.device)
        probs = torch.softmax(predictor.model(predictor.normalize(batch)).float(), dim=1).cpu()
        k = min(top_k, probs.shape[1])
        values, labels = probs.topk(k, dim=1)
        names = predictor.class_names
        for at, vals, labs in zip(where, values.tolist(), labels.tolist(), strict=True):
            rows[at]["class_name"] = names[labs[0]]
            rows[at]["probability"] = round(vals[0], 6)
            rows[at]["top_k"] = [[names[c], round(v, 6)] for c, v in zip(labs, vals, strict=True)]
    return rows


def decode_item(predictor: Predictor, item: Item) -> np.ndarray | str | None:
    """An item's pixels (C×H×W uint8), why it cannot be used, or None if it carries an error."""
    index, _, data, error = item
    if error is not None:
        return None
    if isinstance(data, np.ndarray):
        return data
    data = data or b""
    fast = _png_at_size(predictor, data)
    if fast is not None:
        return fast
    try:
        return predictor.image_to_chw(index, data)
    except BadInput as exc:
        return exc.message.split(": ", 1)[-1]


def _png_at_size(predictor: Predictor, data: bytes) -> np.ndarray | None:
    """A PNG already in the model's channels (8-bit) and size, for a built-in's model: decoded
    straight to its pixels, the same as :meth:`Predictor.image_to_chw` gives, without its size
    guards (the header's size is the model's) or conversions. None: that general path decides,
    and names what is wrong with a broken file."""
    c, h, w = predictor.shape
    if predictor.resize is not None or len(data) < 33 or not data.startswith(PNG_MAGIC):
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if data[12:16] != b"IHDR" or (height, width, depth) != (h, w, 8):
        return None
    if colour != PNG_COLOUR_TYPE.get(c):
        return None
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as img:
            if img.mode != PNG_MODE[c] or img.size != (w, h):
                return None
            pixels = np.asarray(img, dtype=np.uint8)
    except Exception:  # a broken file: the general path names it
        return None
    return pixels.reshape(h, w, c).transpose(2, 0, 1)


def _decode_async(
    pool: ThreadPoolExecutor, predictor: Predictor, chunk: list[Item]
) -> list[Future[list[Decoded]]]:
    """The chunk's items decoded on the pool, :data:`DECODE_TASK` at a time."""

    def decode(part: list[Item]) -> list[Decoded]:
        return [decode_item(predictor, item) for item in part]

    return [
        pool.submit(decode, chunk[at : at + DECODE_TASK])
        for at in range(0, len(chunk), DECODE_TASK)
    ]


def check_dataset_images(
    predictor_ckpt: dict[str, Any], shape: tuple[int, int, int], ref: str
) -> None:
    """A dataset's images go to the model as they are: they must be its input's shape."""
    check_images(of_checkpoint(predictor_ckpt), shape, f"dataset {ref!r}")
