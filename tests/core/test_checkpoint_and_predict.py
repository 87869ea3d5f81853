from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.predict import Predictor
from cnnlab.engine.training import fit
from cnnlab.errors import BadInput, CheckpointError
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import patterned_images, write_cifar10, write_mnist


def _train(dataset: str) -> dict:
    spec = TrainSpec.model_validate(
        {"dataset": dataset, "val_size": 50, "batch_size": 64, "epochs": 2,
         "optimizer": {"lr": 0.05, "momentum": 0.9}, "model": {"channels": [8, 16]}}
    )  # fmt: skip
    return fit(spec).best_checkpoint


@pytest.fixture(scope="module")
def mnist_ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data_dir = tmp_path_factory.mktemp("data")
    write_mnist(data_dir, n_train=400, n_test=50)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_DATA_DIR", str(data_dir))
        from cnnlab.settings import get_settings

        get_settings.cache_clear()
        return _train("mnist")


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_checkpoint_file_is_self_describing_and_torch_loadable(
    mnist_ckpt: dict, tmp_path: Path
) -> None:
    path = checkpoint.save(mnist_ckpt, tmp_path / "best.pt")
    raw = torch.load(path)  # torch's safe default (weights_only) reads it
    assert raw["model"]["name"] == "cnn" and raw["dataset"]["class_names"][3] == "3"
    assert raw["spec"]["dataset"] == "mnist" and raw["epoch"] == mnist_ckpt["epoch"]
    # A model rebuilt from the file alone gives the same outputs.
    x = torch.randn(4, 1, 28, 28)
    a = checkpoint.load_model(mnist_ckpt)(x)
    b = checkpoint.load_model(checkpoint.load(path))(x)
    assert torch.equal(a, b)


def test_garbage_is_not_a_checkpoint() -> None:
    with pytest.raises(CheckpointError):
        checkpoint.loads(b"not a checkpoint")


def test_predictions_for_arrays_and_png_agree(mnist_ckpt: dict) -> None:
    images, labels = patterned_images(20, (28, 28), seed=123)
    predictor = Predictor(mnist_ckpt)
    from_arrays = predictor.predict_arrays([img.tolist() for img in images])
    from_pngs = predictor.predict_images([_png(img) for img in images])
    assert from_arrays == from_pngs
    assert [p["label"] for p in from_arrays] == [int(x) for x in labels]
    first = from_arrays[0]
    assert first["class_name"] == str(first["label"])
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4


def test_colour_and_resized_images_are_converted(mnist_ckpt: dict) -> None:
    rgb = np.zeros((56, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    (pred,) = Predictor(mnist_ckpt).predict_images([buf.getvalue()])
    assert 0 <= pred["label"] < 10


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (np.zeros((28, 27)).tolist(), r"expected shape \(28, 28\)"),
        (np.full((28, 28), 300).tolist(), "0 to 255"),
        ([["a"] * 28] * 28, "not an array of numbers"),
    ],
)
def test_bad_arrays_name_the_item(mnist_ckpt: dict, instance: object, message: str) -> None:
    good = np.zeros((28, 28)).tolist()
    with pytest.raises(BadInput, match=message) as info:
        Predictor(mnist_ckpt).predict_arrays([good, instance])
    assert info.value.item == 1


def test_undecodable_and_huge_images_are_rejected(mnist_ckpt: dict) -> None:
    predictor = Predictor(mnist_ckpt)
    with pytest.raises(BadInput, match="cannot decode") as info:
        predictor.predict_images([_png(np.zeros((28, 28), np.uint8)), b"\x89PNG broken"])
    assert info.value.item == 1
    # A tiny file claiming a 20000×20000 canvas is refused before decoding.
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(BadInput, match="too large"):
        predictor.predict_images([bomb.getvalue()])


def test_colour_model_takes_hwc_arrays(data_dir: Path) -> None:
    write_cifar10(data_dir, n_train=200, n_test=20)
    predictor = Predictor(_train("cifar10"))
    (pred,) = predictor.predict_arrays([np.zeros((32, 32, 3)).tolist()])
    assert pred["class_name"] in predictor.class_names
    with pytest.raises(BadInput, match=r"expected shape \(32, 32, 3\)"):
        predictor.predict_arrays([np.zeros((32, 32)).tolist()])


def test_numbers_too_big_for_a_float_are_bad_input(mnist_ckpt: dict) -> None:
    with pytest.raises(BadInput, match="not an array of numbers"):
        Predictor(mnist_ckpt).predict_arrays([[[10**400] * 28] * 28])
