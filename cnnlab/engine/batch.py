"""Batch predictions: a registered model over many images, chunk by chunk, each input's
class, probability and top-k, or why it could not be read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.datasets.signature import check_images, of_checkpoint
from cnnlab.engine.archives import iter_members
from cnnlab.engine.predict import Predictor
from cnnlab.errors import BadInput

CHUNK = 512

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
    for index, name, data, error in chunk:
        row: dict[str, Any] = {"index": index, "file": name[-1000:]}
        if error is None and isinstance(data, bytes):
            try:
                decoded.append(predictor.image_to_chw(index, data))
                where.append(len(rows))
            except BadInput as exc:
                error = exc.message.split(": ", 1)[-1]
        elif error is None and isinstance(data, np.ndarray):
            decoded.append(data)
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


def check_dataset_images(
    predictor_ckpt: dict[str, Any], shape: tuple[int, int, int], ref: str
) -> None:
    """A dataset's images go to the model as they are: they must be its input's shape."""
    check_images(of_checkpoint(predictor_ckpt), shape, f"dataset {ref!r}")
