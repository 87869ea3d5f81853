"""Sample images are the training portion's first images, as real PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.engine.samples import class_grid_png, png_bytes, training_samples
from cnnlab.engine.splits import make_splits
from cnnlab.spec.train import TrainSpec
from tests.utils.datasets import write_cifar10, write_mnist


def test_samples_are_the_first_training_images(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=200, n_test=20)
    spec = TrainSpec(dataset="mnist", val_size=50, train_size=100, batch_size=10, seed=3)
    samples = training_samples(spec, 5)
    train = make_splits(spec).train
    assert [s.label for s in samples] == train.labels[:5].tolist()
    for sample, chw in zip(samples, train.images[:5], strict=True):
        image = Image.open(io.BytesIO(sample.png))
        assert image.mode == "L" and image.size == (28, 28)
        assert np.array_equal(np.asarray(image), chw[0].numpy())
        assert sample.class_name == str(sample.label)


def test_colour_images_are_rgb_pngs(data_dir: Path) -> None:
    write_cifar10(data_dir, n_train=20, n_test=10)
    spec = TrainSpec(dataset="cifar10", val_size=5, batch_size=4)
    (sample,) = training_samples(spec, 1)
    image = Image.open(io.BytesIO(sample.png))
    assert image.mode == "RGB" and image.size == (32, 32)
    chw = make_splits(spec).train.images[0]
    assert np.array_equal(np.asarray(image), chw.permute(1, 2, 0).numpy())
    assert png_bytes(chw) == sample.png


def test_augmented_samples_show_the_jobs_augmentation(data_dir: Path) -> None:
    write_mnist(data_dir, n_train=200, n_test=20)
    doc = {
        "dataset": "mnist",
        "val_size": 50,
        "batch_size": 10,
        "augment": {"crop": 3, "flip": True},
    }
    spec = TrainSpec.model_validate(doc)
    plain = training_samples(spec, 8)
    shown = training_samples(spec, 8, augmented=True)
    assert [s.label for s in shown] == [s.label for s in plain]
    assert [s.png for s in shown] != [s.png for s in plain]
    assert [s.png for s in shown] == [s.png for s in training_samples(spec, 8, augmented=True)]
    # Without augmentation in the spec, "augmented" samples are the plain ones.
    bare = TrainSpec.model_validate({**doc, "augment": {}})
    assert [s.png for s in training_samples(bare, 8, augmented=True)] == [s.png for s in plain]


def test_a_class_grid_draws_non_ascii_class_names() -> None:
    """A class name's letters are drawn as written: "é" differs from a character no font has
    (drawn as the font's box), as it does not in Pillow's ASCII-only default font."""
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    labels = torch.tensor([0, 1])

    def label_area(names: list[str]) -> np.ndarray:
        grid = Image.open(io.BytesIO(class_grid_png(images, labels, names))).convert("L")
        return np.asarray(grid)[:, :160]  # the names' column

    assert not np.array_equal(label_area(["été", "b"]), label_area(["\u0378t\u0378", "b"]))
    assert not np.array_equal(label_area(["Ωμέγα", "b"]), label_area(["\u0378" * 5, "b"]))
    assert label_area(["été", "b"]).min() < 128  # something is drawn
