"""Self-describing checkpoints: everything ``predict`` and ``resume`` need is in the file.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so ``torch.load`` reads it with
``weights_only=True`` (no arbitrary unpickling, whatever the installed torch's default), and so
must everything put in it: store plain types, never objects.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.datasets.catalog import DatasetMeta
from cnnlab.errors import CheckpointError
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec

FORMAT = "cnnlab-checkpoint"
VERSION = 1

# A checkpoint as a document (what dumps writes and loads reads); a stored one is the row
# cnnlab.store.tables.CheckpointDoc.
CheckpointDoc = dict[str, Any]


def dataset_record(meta: DatasetMeta) -> dict[str, Any]:
    """What predictions need of the dataset: shape, class names, normalisation and, for an
    upload (``NAME@V``), how its images were brought to size (``resize``), so a model keeps
    predicting the same way after the dataset is deleted."""
    record: dict[str, Any] = {
        "name": meta.name,
        "shape": list(meta.shape),
        "class_names": list(meta.class_names),
        "mean": list(meta.mean),
        "std": list(meta.std),
    }
    if meta.resize is not None:
        record["resize"] = meta.resize
    return record


def cpu_state(module: nn.Module | torch.optim.Optimizer) -> dict[str, Any]:
    """A detached CPU copy of a state dict (training keeps mutating the live one)."""

    def copy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", copy=True).contiguous()
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    state: dict[str, Any] = copy(module.state_dict())
    return state


def make(
    *,
    spec: TrainSpec,
    meta: DatasetMeta,
    epoch: int,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any] | None,
    metrics: list[dict[str, Any]],
    best_val_accuracy: float,
    best_epoch: int,
    best_model_state: dict[str, Any] | None = None,
    warm_start: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
) -> CheckpointDoc:
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model_config(spec, meta),
        "spec": spec.model_dump(mode="json"),
        "dataset": dataset_record(meta),
        "epoch": epoch,
        "model_state": model_state,
        "optimizer_state": optimizer_state,
        "best_model_state": best_model_state,
        "metrics": metrics,
        "best_val_accuracy": best_val_accuracy,
        "best_epoch": best_epoch,
        # What the weights started from (the spec's ``init``) and whether the head was rebuilt.
        "warm_start": warm_start,
        "torch_version": str(torch.__version__),
        # The run's receipt (cnnlab.engine.environment): versions, device, data, seed.
        "environment": environment,
    }


def check(ckpt: Any) -> CheckpointDoc:
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("not a cnnlab checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint version {ckpt['version']} is newer than this cnnlab")
    return ckpt


def load_model(ckpt: CheckpointDoc, device: str | torch.device = "cpu") -> nn.Module:
    """The checkpoint's model, weights loaded, in eval mode."""
    model = build_model(check(ckpt)["model"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval()


def dumps(ckpt: CheckpointDoc) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def loads(data: bytes) -> CheckpointDoc:
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from exc
    return check(ckpt)


def save(ckpt: CheckpointDoc, path: str | Path) -> Path:
    """Write atomically, so a crash never leaves half a checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(dumps(ckpt))
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> CheckpointDoc:
    return loads(Path(path).read_bytes())
