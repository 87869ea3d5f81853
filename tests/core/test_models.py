from __future__ import annotations

import pytest
import torch

from cnnlab.architectures.registry import create_architecture, list_architectures
from cnnlab.datasets.catalog import DATASETS


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("name", list_architectures())
def test_every_model_on_every_dataset_shape(name: str, dataset: str) -> None:
    meta = DATASETS[dataset]
    model = create_architecture(
        name, in_shape=meta.shape, num_classes=meta.num_classes, channels=[8, 16]
    )
    out = model(torch.randn(3, *meta.shape))
    assert out.shape == (3, meta.num_classes)
    out.sum().backward()  # trainable end to end


def test_the_notebooks_mnist_cnn_runs_on_cifar10_unchanged() -> None:
    mnist, cifar = DATASETS["mnist"], DATASETS["cifar10"]
    on_mnist = create_architecture("cnn", in_shape=mnist.shape, num_classes=10)
    on_cifar = create_architecture("cnn", in_shape=cifar.shape, num_classes=10)
    assert on_mnist.head[-1].in_features == 32 * 7 * 7  # the notebook's 32*7*7 head
    assert on_cifar.head[-1].in_features == 32 * 8 * 8
    assert on_cifar.features[0].in_channels == 3
    assert on_cifar(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_options_change_the_architecture() -> None:
    model = create_architecture(
        "cnn", in_shape=(1, 28, 28), num_classes=10, channels=[8], batch_norm=True, dropout=0.5
    )
    kinds = [type(m).__name__ for m in model.modules()]
    assert "BatchNorm2d" in kinds and "Dropout" in kinds
    assert model.features[0].bias is None  # batch norm makes the conv bias redundant


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="cnn_deep"):
        create_architecture("nope", in_shape=(1, 28, 28), num_classes=10)


def test_same_function_as_the_notebooks_layer_order() -> None:
    """The CNN pools before its ReLU (cheaper); the notebook's conv→ReLU→pool order gives the same
    outputs and gradients for the same weights."""
    from torch import nn

    torch.manual_seed(0)
    ours = create_architecture("cnn", in_shape=(1, 28, 28), num_classes=10)
    c1, c2 = ours.features[0], ours.features[3]
    notebook = nn.Sequential(
        c1, nn.ReLU(), nn.MaxPool2d(2), c2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), ours.head[-1]
    )
    x = torch.randn(8, 1, 28, 28)
    a, b = ours(x), notebook(x)
    assert torch.allclose(a, b)
    ga = torch.autograd.grad(a.sum(), c1.weight)[0]
    gb = torch.autograd.grad(b.sum(), c1.weight)[0]
    assert torch.allclose(ga, gb, atol=1e-6)
