"""A trained model scored on labelled images: probabilities batch by batch, then the metrics of
:mod:`cnnlab.engine.metrics`; the report a training job records of its best weights on its
validation and test images; a picture's worth of the most confident mistakes."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cnnlab.datasets.signature import check_images, label_map, of_checkpoint
from cnnlab.engine import metrics
from cnnlab.engine.checkpoints import CheckpointDoc, load_model
from cnnlab.engine.evaluation_data import LabelledSet
from cnnlab.engine.training import EVAL_BATCH_SIZE, Normalize

# Wrong predictions kept, most confident first, with their pixels (for mistakes.png).
MISTAKES_KEPT = 16

Progress = Callable[[int, int], None]


class Stopped(Exception):
    """``should_stop`` answered True between batches."""


@torch.inference_mode()
def probabilities(
    ckpt: CheckpointDoc,
    images: torch.Tensor,
    device: torch.device | str = "cpu",
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Softmax probabilities (N×K float32) of the checkpoint's model on uint8 N×C×H×W images."""
    device = torch.device(device)
    model = load_model(ckpt, device).to(memory_format=torch.channels_last)
    normalize = Normalize(ckpt["dataset"], device)
    out = []
    n = len(images)
    for start in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            raise Stopped
        x = normalize(images[start : start + batch_size].to(device))
        out.append(torch.softmax(model(x).float(), dim=1).cpu())
        if progress is not None:
            progress(min(start + batch_size, n), n)
    k = len(ckpt["dataset"]["class_names"])
    return torch.cat(out).numpy() if out else np.zeros((0, k), dtype=np.float32)


def model_labels(ckpt: CheckpointDoc, data: LabelledSet) -> np.ndarray:
    """The set's labels as the model's class indices (its classes matched by name), after the
    set's images are checked against the model's signature."""
    signature = of_checkpoint(ckpt)
    what = f"dataset {data.ref!r}"
    check_images(signature, data.shape, what)
    mapping = np.asarray(label_map(signature, data.class_names, what), dtype=np.int64)
    return mapping[data.labels.cpu().numpy()]


def score(
    ckpt: CheckpointDoc,
    data: LabelledSet,
    device: torch.device | str = "cpu",
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The set's labels (the model's indices) and the model's probabilities on its images."""
    true = model_labels(ckpt, data)
    probs = probabilities(ckpt, data.images, device, progress=progress, should_stop=should_stop)
    return true, probs


def report(
    true: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    images: torch.Tensor | None = None,
    mistakes: int = MISTAKES_KEPT,
) -> dict[str, Any]:
    """:func:`metrics.summary` plus the most confident mistakes (with PNGs when ``images``)."""
    out = metrics.summary(true, probs, class_names)
    pred, conf = probs.argmax(axis=1), probs.max(axis=1)
    out["mistakes"] = [
        mistake_record(m, class_names, images)
        for m in metrics.confident_mistakes(true, pred, conf, mistakes)
    ]
    return out


def mistake_record(
    m: metrics.Mistake, class_names: list[str], images: torch.Tensor | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "index": m.index,
        "true": class_names[m.true],
        "predicted": class_names[m.predicted],
        "confidence": round(m.confidence, 6),
    }
    if images is not None:
        record["png"] = png_base64(images[m.index])
    return record


def png_base64(chw: torch.Tensor) -> str:
    """One uint8 C×H×W image as a base64 PNG."""
    from PIL import Image

    array = chw.cpu().numpy().transpose(1, 2, 0)
    img = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def job_report(
    ckpt: CheckpointDoc, val: LabelledSet, test: LabelledSet | None, device: torch.device | str
) -> dict[str, Any]:
    """What a training job records of its best weights: per-class metrics and the confusion on
    its validation images (with the most confident mistakes) and on its test split."""
    names = list(ckpt["dataset"]["class_names"])
    true, probs = score(ckpt, val, device)
    result: dict[str, Any] = {"validation": report(true, probs, names, val.images)}
    if test is not None:
        true, probs = score(ckpt, test, device)
        result["test"] = report(true, probs, names, None, mistakes=0)
    return result
