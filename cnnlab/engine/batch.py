"""Batch predictions: a registered model over many images, chunk by chunk, each input's
class, probability and top-k, or why it could not be read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.datasets.signature import check_images, of_checkpoint
from cnnlab.engine.archives import iter_members
from cnnlab.engine.predict import Predictor
from cnnlab.errors import BadInput

CHUNK = 512
DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))

Item = tuple[int, str, "bytes | np.ndarray | None", "str | None"]  # index, file, input, error


def archive_items(path: Path, start: int, max_files: int | None = None) -> Iterator[Item]:
    """The archive's files from index ``start`` on (earlier ones are skipped unread where the
    format allows; their rows exist)."""
    for index, member in enumerate(iter_members(path, max_files)):
        if index >= start:
            yield index, member.name, member.data, member.error


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


@torch.inference_mode()
def predict_chunk(predictor: Predictor, chunk: list[Item], top_k: int) -> list[dict[str, Any]]:
    """One row per item, in order: a decoded image's class, probability and ``top_k``
    (``[class, probability]`` pairs), or its ``error``."""
    rows: list[dict[str, Any]] = []
    decoded: list[np.ndarray] = []
    where: list[int] = []
    for (index, name, _, error), image in zip(chunk, _decode_all(predictor, chunk), strict=True):
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


def _decode(predictor: Predictor, item: Item) -> np.ndarray | str | None:
    """An item's pixels (C×H×W uint8), why it cannot be used, or None if it carries an error."""
    index, _, data, error = item
    if error is not None:
        return None
    if isinstance(data, np.ndarray):
        return data
    try:
        return predictor.image_to_chw(index, data or b"")
    except BadInput as exc:
        return exc.message.split(": ", 1)[-1]


def _decode_all(predictor: Predictor, chunk: list[Item]) -> list[np.ndarray | str | None]:
    """Every item decoded, on :data:`DECODE_THREADS` threads (Pillow decodes without the GIL)."""
    if len(chunk) < 2 * DECODE_THREADS or isinstance(chunk[0][2], np.ndarray):
        return [_decode(predictor, item) for item in chunk]
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        return list(pool.map(lambda item: _decode(predictor, item), chunk))


def check_dataset_images(
    predictor_ckpt: dict[str, Any], shape: tuple[int, int, int], ref: str
) -> None:
    """A dataset's images go to the model as they are: they must be its input's shape."""
    check_images(of_checkpoint(predictor_ckpt), shape, f"dataset {ref!r}")
