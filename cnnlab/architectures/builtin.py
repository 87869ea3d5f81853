"""Built-in models. Each builder takes the dataset's input shape and class count, so the same spec
runs on MNIST (1×28×28) and CIFAR-10 (3×32×32) unchanged."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _head(features: int, num_classes: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def _conv(c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    # A conv followed by batch norm needs no bias of its own.
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers


def _pooled_relu() -> list[nn.Module]:
    # max-pool then ReLU computes exactly ReLU then max-pool (both are monotone), with the ReLU
    # and its backward pass on a quarter of the values: measurably faster on a CPU.
    return [nn.MaxPool2d(2), nn.ReLU(inplace=True)]


def _spatial_after(in_shape: tuple[int, int, int], blocks: int) -> tuple[int, int]:
    _, h, w = in_shape
    for _ in range(blocks):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(
            f"{blocks} pooling blocks shrink {in_shape[1]}×{in_shape[2]} images to nothing; "
            f"use at most {min(in_shape[1:]).bit_length() - 1} channels entries"
        )
    return h, w


class ConvNet(nn.Module):
    def __init__(self, features: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cnn(
    in_shape: tuple[int, int, int],
    num_classes: int,
    channels: list[int] | tuple[int, ...] = (16, 32),
    batch_norm: bool = False,
    dropout: float = 0.0,
    convs: list[int] | tuple[int, ...] | None = None,
) -> nn.Module:
    """The lab's CNN: per entry of ``channels`` a 3×3 conv, ReLU and 2×2 max-pool; a linear head.

    ``convs`` (one per entry of ``channels``; null: one each) stacks more 3×3 convs in a block
    before its pool: depth where it is cheap, at the small late resolutions, keeping one conv at
    full resolution (``[1, 2, 2]``)."""
    h, w = _spatial_after(in_shape, len(channels))
    per_block = [1] * len(channels) if convs is None else list(convs)
    if len(per_block) != len(channels) or min(per_block) < 1:
        raise ValueError(
            f"convs {per_block} must give 1 or more convs for each of the {len(channels)} "
            "channels entries"
        )
    layers: list[nn.Module] = []
    c_in = in_shape[0]
    for c_out, n_convs in zip(channels, per_block, strict=True):
        for _ in range(n_convs - 1):
            layers += [*_conv(c_in, c_out, batch_norm), nn.ReLU(inplace=True)]
            c_in = c_out
        layers += [*_conv(c_in, c_out, batch_norm), *_pooled_relu()]
        c_in = c_out
    return ConvNet(nn.Sequential(*layers), _head(c_in * h * w, num_classes, dropout))


def cnn_deep(
    in_shape: tuple[int, int, int],
    num_classes: int,
    channels: list[int] | tuple[int, ...] = (64, 128, 256),
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> nn.Module:
    """A deeper variant for CIFAR-10: two 3×3 convs per block before each pool, and a global
    average pool before the head, so width and depth grow without a huge linear layer."""
    _spatial_after(in_shape, len(channels))
    layers: list[nn.Module] = []
    c_in = in_shape[0]
    for c_out in channels:
        layers += [*_conv(c_in, c_out, batch_norm), nn.ReLU(inplace=True)]
        layers += [*_conv(c_out, c_out, batch_norm), *_pooled_relu()]
        c_in = c_out
    layers.append(nn.AdaptiveAvgPool2d(1))
    return ConvNet(nn.Sequential(*layers), _head(c_in, num_classes, dropout))


class _Pointwise(nn.Conv2d):
    """A 1×1 convolution with a stride, taken as every ``stride``-th pixel then a 1×1 conv of
    stride 1: the same result and weights, but not oneDNN's strided 1×1 kernel, which crashes the
    process (segmentation fault, measured with torch 2.14.1 on an x86 CPU) in the backward pass
    on one thread, channels-last, with under 16 input channels (resnet's narrow widths)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, 1, bias=False)
        self.step = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, :: self.step, :: self.step])


class _Residual(nn.Module):
    """Two 3×3 convs with batch norm, added to the input (through a 1×1 conv where the shape
    changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(_Pointwise(c_in, c_out, stride), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet(
    in_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 1,
    width: int = 32,
    dropout: float = 0.0,
) -> nn.Module:
    """A small residual network, the choice for 32–64 px colour images: a 3×3 stem, three stages
    of ``depth`` residual blocks with ``width``, 2× and 4× that many channels (the second and third
    halve the resolution), a global average pool and a linear head.

    ``depth`` 1 is a ResNet-8, 2 a ResNet-14, 3 a ResNet-20 (He et al.'s CIFAR family)."""
    _spatial_after(in_shape, 2)
    layers: list[nn.Module] = [*_conv(in_shape[0], width, True), nn.ReLU(inplace=True)]
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for block in range(depth):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(_Residual(c_in, c_out, stride))
            c_in = c_out
    layers.append(nn.AdaptiveAvgPool2d(1))
    return ConvNet(nn.Sequential(*layers), _head(c_in, num_classes, dropout))


# The built-in architectures by name (the registry adds them on first use).
BUILTIN: dict[str, Callable[..., nn.Module]] = {"cnn": cnn, "cnn_deep": cnn_deep, "resnet": resnet}
