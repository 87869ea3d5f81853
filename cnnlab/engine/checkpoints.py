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

from cnnlab.architectures.registry import create_model, model_defaults
from cnnlab.datasets.catalog import DatasetMeta
from cnnlab.errors import CheckpointError
from cnnlab.spec.train import TrainSpec

FORMAT = "cnnlab-checkpoint"
VERSION = 1

Checkpoint = dict[str, Any]


def model_config(spec: TrainSpec, meta: DatasetMeta) -> dict[str, Any]:
    """The registry name and the builder arguments for a spec on a dataset: every option, the
    architecture's own default where the spec leaves it null, so the checkpoint says it all."""
    options = {**model_defaults(spec.model.arch), **spec.model.options()}
    return {
        "name": spec.model.arch,
        "kwargs": {"in_shape": list(meta.shape), "num_classes": meta.num_classes, **options},
    }


def build_model(config: dict[str, Any]) -> nn.Module:
    kwargs = dict(config["kwargs"])
    kwargs["in_shape"] = tuple(kwargs["in_shape"])
    return create_model(config["name"], **kwargs)


def dataset_record(meta: DatasetMeta) -> dict[str, Any]:
    return {
        "name": meta.name,
        "shape": list(meta.shape),
        "class_names": list(meta.class_names),
        "mean": list(meta.mean),
        "std": list(meta.std),
    }


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
) -> Checkpoint:
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
    }


def check(ckpt: Any) -> Checkpoint:
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("not a cnnlab checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint version {ckpt['version']} is newer than this cnnlab")
    return ckpt


def load_model(ckpt: Checkpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The checkpoint's model, weights loaded, in eval mode."""
    model = build_model(check(ckpt)["model"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval()


def dumps(ckpt: Checkpoint) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def loads(data: bytes) -> Checkpoint:
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from exc
    return check(ckpt)


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write atomically, so a crash never leaves half a checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(dumps(ckpt))
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> Checkpoint:
    return loads(Path(path).read_bytes())
