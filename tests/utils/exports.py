"""Running exported model files as a user would, without cnnlab (onnxruntime, plain
``torch.jit.load``), and comparing their answers with cnnlab's own."""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from cnnlab.engine.export import INPUT_NAME, OUTPUT_NAME, TORCHSCRIPT_METADATA_FILE

# Probabilities of an exported file and of cnnlab's prediction agree within this.
TOLERANCE = 1e-4


def nchw(images: np.ndarray) -> np.ndarray:
    """The exported files' input: float32 pixels 0-255, N×C×H×W."""
    if images.ndim == 3:
        images = images[..., None]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


def run_onnx(data: bytes, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: nchw(images)})
    return np.asarray(probs)


def load_torchscript(data: bytes) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    files = {TORCHSCRIPT_METADATA_FILE: ""}
    with warnings.catch_warnings():  # TorchScript says it is deprecated, on every call
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=files)
    return module, json.loads(files[TORCHSCRIPT_METADATA_FILE])


def run_torchscript(data: bytes, images: np.ndarray) -> np.ndarray:
    module, _ = load_torchscript(data)
    with torch.no_grad():
        return np.asarray(module(torch.from_numpy(nchw(images))).numpy())


def assert_parity(probs: np.ndarray, reference: np.ndarray) -> float:
    """Same class per image, probabilities within :data:`TOLERANCE`; the largest difference."""
    assert probs.shape == reference.shape
    assert (probs.argmax(axis=1) == reference.argmax(axis=1)).all()
    worst = float(np.abs(probs - reference).max())
    assert worst < TOLERANCE, worst
    return worst
