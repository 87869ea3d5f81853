"""A run's receipt: what it would take to reproduce it (versions, device, data, seed)."""

from __future__ import annotations

import platform
from typing import Any

import torch

import cnnlab
from cnnlab.engine.evaluation_data import checksum
from cnnlab.settings import Settings


def software() -> dict[str, Any]:
    """Versions of cnnlab, Python, torch, torchvision, CUDA and cuDNN in this process."""
    try:
        import torchvision

        vision: str | None = str(torchvision.__version__)
    except ImportError:
        vision = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "cnnlab": cnnlab.__version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": vision,
        "cuda": torch.version.cuda,
        "cudnn": None if cudnn is None else str(cudnn),
        "platform": platform.platform(terse=True),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return platform.processor() or platform.machine() or "cpu"


def receipt(
    *,
    device: torch.device,
    dataset: str,
    seed: int | None,
    deterministic: bool,
    settings: Settings,
) -> dict[str, Any]:
    """The receipt of a run on ``device`` over ``dataset`` (JSON-ready)."""

    try:
        sha = checksum(dataset, settings)
    except Exception:  # an unknown or unreadable set: the run itself reports it
        sha = None
    return {
        **software(),
        "device": device.type,
        "device_name": device_name(device),
        "dataset": {"name": dataset, "version": None, "checksum": sha},
        "seed": seed,
        "deterministic": deterministic,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
