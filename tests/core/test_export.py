"""Exported files run without cnnlab and answer as cnnlab's own prediction does.

The ONNX file runs in onnxruntime on the CPU, the TorchScript file under plain
``torch.jit.load``; both must give the same class, and probabilities within 1e-4, as
:class:`cnnlab.engine.predict.Predictor` for the same images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cnnlab.datasets.catalog import DATASETS
from cnnlab.engine.checkpoints import cpu_state, make
from cnnlab.engine.export import (
    INPUT_NAME,
    ExportFormat,
    export,
    export_metadata,
)
from cnnlab.engine.predict import Predictor
from cnnlab.engine.training import fit
from cnnlab.settings import Settings
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import patterned_images, write_mnist
from tests.utils.exports import assert_parity, load_torchscript, nchw, run_onnx, run_torchscript


@pytest.fixture(scope="module")
def trained_mnist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A checkpoint from real training (two epochs of tiny generated MNIST, batch norm and
    dropout on: eval mode must be what is exported)."""
    root = tmp_path_factory.mktemp("export")
    write_mnist(root / "data", n_train=300, n_test=50)
    spec = TrainSpec.model_validate(
        {"dataset": "mnist", "val_size": 50, "batch_size": 50, "epochs": 2, "device": "cpu",
         "optimizer": {"lr": 0.05, "momentum": 0.9},
         "model": {"channels": [8, 16], "batch_norm": True, "dropout": 0.2}}
    )  # fmt: skip
    result = fit(spec, settings=Settings(home=root / "home", data_dir=root / "data"))
    return result.best_checkpoint


def _untrained(dataset: str, arch: str) -> dict[str, Any]:
    """A checkpoint of freshly initialised weights (no training): colour inputs and the deeper
    architecture, without the cost of training them."""
    torch.manual_seed(0)
    spec = TrainSpec.model_validate(
        {"dataset": dataset, "model": {"arch": arch, "channels": [8, 16], "batch_norm": True}}
    )
    meta = DATASETS[dataset]
    model = build_model(model_config(spec, meta))
    return make(
        spec=spec,
        meta=meta,
        epoch=1,
        model_state=cpu_state(model),
        optimizer_state=None,
        metrics=[],
        best_val_accuracy=0.0,
        best_epoch=1,
    )


def _images(ckpt: dict[str, Any], n: int, seed: int = 5) -> np.ndarray:
    """``n`` uint8 images as numpy holds them: N×H×W (grey) or N×H×W×C (colour)."""
    c, h, w = ckpt["dataset"]["shape"]
    return patterned_images(n, (h, w) if c == 1 else (h, w, c), seed)[0]


def _reference(ckpt: dict[str, Any], images: np.ndarray) -> np.ndarray:
    """cnnlab's own prediction for the images (as the API answers it)."""
    rows = Predictor(ckpt).predict_arrays(list(images))
    return np.array([r["probabilities"] for r in rows])


RUNNERS = {ExportFormat.onnx: run_onnx, ExportFormat.torchscript: run_torchscript}


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_a_trained_model_answers_as_cnnlab_does(
    trained_mnist: dict[str, Any], fmt: ExportFormat
) -> None:
    images = _images(trained_mnist, 32)
    data = export(trained_mnist, fmt)
    reference = _reference(trained_mnist, images)
    assert_parity(RUNNERS[fmt](data, images), reference)
    # Any batch size, one image included.
    assert_parity(RUNNERS[fmt](data, images[:1]), reference[:1])


@pytest.mark.parametrize(("dataset", "arch"), [("cifar10", "cnn"), ("cifar10", "cnn_deep")])
@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_colour_images_and_the_deeper_network(dataset: str, arch: str, fmt: ExportFormat) -> None:
    ckpt = _untrained(dataset, arch)
    images = _images(ckpt, 6, seed=9)
    assert_parity(RUNNERS[fmt](export(ckpt, fmt), images), _reference(ckpt, images))


def test_the_onnx_file_says_how_to_use_it(trained_mnist: dict[str, Any]) -> None:
    data = export(trained_mnist, ExportFormat.onnx, name="digits", version=2)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert props["input_shape"] == [1, 28, 28]
    assert props["mean"] == pytest.approx(list(DATASETS["mnist"].mean))
    assert props["std"] == pytest.approx(list(DATASETS["mnist"].std))
    assert props["class_names"] == list(DATASETS["mnist"].class_names)
    assert props["input_range"] == [0, 255] and props["output"] == "probabilities"
    assert (props["name"], props["version"]) == ("digits", 2)
    assert props["cnnlab"] == export_metadata(trained_mnist, name="digits", version=2)
    # The graph's own signature agrees: a dynamic batch of 1×28×28 float images.
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == INPUT_NAME
    assert [d.dim_value for d in dims[1:]] == [1, 28, 28] and dims[0].dim_param


def test_the_torchscript_file_says_how_to_use_it(trained_mnist: dict[str, Any]) -> None:
    _, meta = load_torchscript(export(trained_mnist, ExportFormat.torchscript, name="digits"))
    assert meta == export_metadata(trained_mnist, name="digits")
    assert meta["input_shape"] == [1, 28, 28] and meta["num_classes"] == 10


def test_exports_are_files_on_disk_too(trained_mnist: dict[str, Any], tmp_path: Path) -> None:
    # What a user does with the downloaded file: open it by path, without cnnlab.
    path = tmp_path / "model.onnx"
    path.write_bytes(export(trained_mnist, "onnx"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = _images(trained_mnist, 4)
    (probs,) = session.run(None, {INPUT_NAME: nchw(images)})
    assert_parity(np.asarray(probs), _reference(trained_mnist, images))


def test_an_unknown_format_is_refused(trained_mnist: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        export(trained_mnist, "pickle")
