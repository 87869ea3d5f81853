from __future__ import annotations

import pytest
import torch

from cnnlab.architectures.registry import (
    create_architecture,
    describe_architecture,
    list_architectures,
)
from cnnlab.datasets.catalog import DATASETS, get_meta
from cnnlab.spec.model import model_config
from cnnlab.spec.train import TrainSpec

# Narrow options per architecture, to keep the test cheap (a new one runs at its defaults).
SMALL = {"cnn": {"channels": [8, 16]}, "cnn_deep": {"channels": [8, 16]}, "resnet": {"width": 8}}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("name", list_architectures())
def test_every_model_on_every_dataset_shape(name: str, dataset: str) -> None:
    meta = DATASETS[dataset]
    options = SMALL.get(name, {})
    model = create_architecture(name, in_shape=meta.shape, num_classes=meta.num_classes, **options)
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


@pytest.mark.parametrize("name", list_architectures())
def test_every_architecture_describes_its_options_and_defaults(name: str) -> None:
    described = describe_architecture(name)
    assert described["name"] == name and described["description"]
    assert "in_shape" not in described["options"] and "num_classes" not in described["options"]
    assert "dropout" in described["options"]


def test_a_spec_without_options_gets_the_architectures_own_defaults() -> None:
    """cnn_deep's defaults (64/128/256 channels, batch norm) apply when the spec leaves them
    out, and the checkpoint's model config records them."""
    meta = get_meta("cifar10")
    deep = model_config(
        TrainSpec.model_validate({"dataset": "cifar10", "model": {"arch": "cnn_deep"}}), meta
    )
    assert deep["kwargs"]["channels"] == [64, 128, 256] and deep["kwargs"]["batch_norm"] is True
    cnn = model_config(TrainSpec.model_validate({"dataset": "cifar10"}), meta)
    assert cnn["kwargs"]["channels"] == [16, 32] and cnn["kwargs"]["batch_norm"] is False
    set_ = model_config(
        TrainSpec.model_validate(
            {
                "dataset": "cifar10",
                "model": {"arch": "cnn_deep", "channels": [8], "batch_norm": False},
            }
        ),
        meta,
    )
    assert set_["kwargs"]["channels"] == [8] and set_["kwargs"]["batch_norm"] is False


def test_an_option_the_architecture_lacks_is_refused_naming_it() -> None:
    from pydantic import ValidationError

    from cnnlab.spec.train import field_path

    with pytest.raises(ValidationError) as err:
        TrainSpec.model_validate({"dataset": "mnist", "model": {"arch": "cnn", "depth": 2}})
    assert field_path(err.value.errors()[0]["loc"]) == "model.depth"


def test_resnet_depth_and_width_shape_the_network() -> None:
    def blocks(**options: int) -> int:
        model = create_architecture("resnet", in_shape=(3, 32, 32), num_classes=10, **options)
        return sum(type(m).__name__ == "_Residual" for m in model.modules())

    assert blocks(depth=1) == 3 and blocks(depth=3) == 9
    wide = create_architecture("resnet", in_shape=(3, 32, 32), num_classes=10, width=16)
    assert wide.head[-1].in_features == 64  # the last stage has 4 × width channels


def test_cnn_convs_stack_more_convs_per_block_and_default_to_one() -> None:
    plain = create_architecture("cnn", in_shape=(1, 28, 28), num_classes=10, channels=[8, 16])
    same = create_architecture(
        "cnn", in_shape=(1, 28, 28), num_classes=10, channels=[8, 16], convs=[1, 1]
    )
    assert list(plain.state_dict()) == list(same.state_dict())  # null is one conv per block
    deeper = create_architecture(
        "cnn", in_shape=(1, 28, 28), num_classes=10, channels=[8, 16], convs=[1, 3], batch_norm=True
    )
    convs = [m for m in deeper.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 16), (16, 16), (16, 16)]
    assert deeper.head[-1].in_features == 16 * 7 * 7  # still one pool per block
    assert deeper(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_convs_must_match_the_channels() -> None:
    from cnnlab.errors import SpecError
    from cnnlab.spec.validate import check_model

    spec = TrainSpec.model_validate(
        {"dataset": "mnist", "model": {"arch": "cnn", "channels": [8, 16], "convs": [2]}}
    )
    with pytest.raises(SpecError, match="convs") as info:
        check_model(spec)
    assert info.value.field == "model"
    with pytest.raises(ValueError, match="convs"):
        TrainSpec.model_validate({"dataset": "mnist", "model": {"arch": "resnet", "convs": [2]}})
    with pytest.raises(ValueError, match=r"model\.convs\.0"):
        TrainSpec.model_validate({"dataset": "mnist", "model": {"convs": [0]}})
