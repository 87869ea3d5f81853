"""Portable exports of a checkpoint's model: ONNX and TorchScript files that run without cnnlab.

The exported network takes what a caller has: pixel values 0-255 as float32, N×C×H×W; it
standardises them with the dataset's mean and std and returns class probabilities (N×K, softmax),
so its answer is cnnlab's own prediction for the same images. What a caller needs besides the
file (input shape, the normalisation inside, class names) is in the file's metadata: ONNX
``metadata_props`` (each key a JSON value, and all of it under ``cnnlab``), TorchScript's
``_extra_files`` entry ``cnnlab.json``. :func:`export_metadata` gives the same dictionary.
"""

from __future__ import annotations

import enum
import io
import json
import threading
import warnings
from typing import Any

import torch
from torch import nn

from cnnlab.engine.checkpoints import CheckpointDoc, check, load_model

EXPORT_FORMAT = "cnnlab-export"
EXPORT_VERSION = 1
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
TORCHSCRIPT_METADATA_FILE = "cnnlab.json"
# The ONNX operator set of the files written; onnxruntime has run it since 1.16.
ONNX_OPSET = 18

# Neither exporter is safe to run from two threads at once (both trace the model through
# process-wide state), and the API runs requests in a threadpool.
_export_lock = threading.Lock()


class ExportFormat(enum.StrEnum):
    onnx = "onnx"
    torchscript = "torchscript"


MEDIA_TYPES = {
    ExportFormat.onnx: "application/onnx",
    ExportFormat.torchscript: "application/octet-stream",
}
SUFFIXES = {ExportFormat.onnx: ".onnx", ExportFormat.torchscript: ".pt"}


class PortableModel(nn.Module):
    """The checkpoint's network with cnnlab's input handling around it: 0-255 pixels in,
    probabilities out (the arithmetic of :class:`cnnlab.engine.training.Normalize`)."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.model = model
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer(
            "shift", -torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / std_t
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, pixels, self.scale)
        return torch.softmax(self.model(x), dim=1)


def export_metadata(ckpt: CheckpointDoc, **extra: Any) -> dict[str, Any]:
    """What a caller of the exported file needs, plus ``extra`` (e.g. the registry's name and
    version of the model); JSON-ready."""
    dataset = check(ckpt)["dataset"]
    c, h, w = (int(v) for v in dataset["shape"])
    class_names = [str(n) for n in dataset["class_names"]]
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        **extra,
        "dataset": dataset["name"],
        "arch": ckpt["model"]["name"],
        "epoch": int(ckpt["epoch"]),
        "input_name": INPUT_NAME,
        "input_shape": [c, h, w],
        "input_dtype": "float32",
        "input_layout": "NCHW",
        "input_range": [0, 255],
        "mean": [float(m) for m in dataset["mean"]],
        "std": [float(s) for s in dataset["std"]],
        "normalization": "included: the model computes (pixels / 255 - mean) / std per channel",
        "output_name": OUTPUT_NAME,
        "output": "probabilities",
        "class_names": class_names,
        "num_classes": len(class_names),
        # The training run's receipt (versions, device, data, seed); null for older checkpoints.
        "environment": ckpt.get("environment"),
    }


def portable_model(ckpt: CheckpointDoc) -> PortableModel:
    dataset = check(ckpt)["dataset"]
    model = load_model(ckpt, "cpu").to(memory_format=torch.contiguous_format)
    return PortableModel(model, list(dataset["mean"]), list(dataset["std"])).eval()


def _example(ckpt: CheckpointDoc) -> torch.Tensor:
    c, h, w = ckpt["dataset"]["shape"]
    return torch.rand(2, c, h, w) * 255


def export_onnx(ckpt: CheckpointDoc, **extra: Any) -> bytes:
    """An ONNX file (any batch size), its metadata in ``metadata_props``."""
    import onnx

    module = portable_model(ckpt)
    batch = torch.export.Dim("batch", min=1)
    with _export_lock, torch.no_grad():
        program = torch.onnx.export(
            module,
            (_example(ckpt),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            optimize=True,
            verbose=False,
        )
    assert program is not None
    proto = program.model_proto
    meta = export_metadata(ckpt, **extra)
    del proto.metadata_props[:]
    for key, value in [*meta.items(), ("cnnlab", meta)]:
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value)
    proto.doc_string = (
        f"cnnlab {meta['arch']} on {meta['dataset']}: float32 pixels 0-255, "
        f"N×{'×'.join(map(str, meta['input_shape']))} in; class probabilities out"
    )
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    return data


def export_torchscript(ckpt: CheckpointDoc, **extra: Any) -> bytes:
    """A TorchScript file (``torch.jit.load``), its metadata in the extra file ``cnnlab.json``."""
    module = portable_model(ckpt)
    meta = export_metadata(ckpt, **extra)
    buf = io.BytesIO()
    # TorchScript is deprecated in favour of torch.export, and says so on every call; the
    # format is still what plain-PyTorch (and C++ libtorch) servers load.
    with _export_lock, torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=Warning)
        # Traced, not scripted: these networks have no control flow, and tracing needs no
        # annotations TorchScript can parse. The batch dimension stays free.
        traced = torch.jit.trace(module, (_example(ckpt),))
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_METADATA_FILE: json.dumps(meta)})
    return buf.getvalue()


def export(ckpt: CheckpointDoc, fmt: ExportFormat | str, **extra: Any) -> bytes:
    """The checkpoint's model as a file in ``fmt`` (``onnx`` or ``torchscript``)."""
    fmt = ExportFormat(fmt)
    if fmt is ExportFormat.onnx:
        return export_onnx(ckpt, **extra)
    return export_torchscript(ckpt, **extra)
