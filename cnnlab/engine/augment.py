"""Augmentation of training batches, on the tensors where they are (the GPU when training there).

Each call draws from the generator it is given; the epoch loop seeds one per ``(seed, epoch)``
(:func:`generator`), so the same job sees the same augmented images on every run and on resume.
The input is a uint8 (or float) N×C×H×W batch with pixel values 0–255; the output holds values on
the same scale (float once rotated, translated or jittered), ready for normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.spec.recipe import AugmentSpec

# Keeps the augmentation's random stream apart from the shuffle's, which uses the same seed.
_STREAM = 0x5EED_A06


def generator(epoch_seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed((epoch_seed ^ _STREAM) % 2**63)


def augment(x: torch.Tensor, spec: AugmentSpec, gen: torch.Generator) -> torch.Tensor:
    """``x`` with ``spec``'s random changes, one draw per image; labels are unchanged."""
    if spec.crop:
        x = _random_crop(x, spec.crop, gen)
    if spec.flip:
        flip = torch.rand(len(x), generator=gen, device=x.device) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if spec.translate or spec.rotate:
        x = _affine(x, spec.translate, spec.rotate, gen)
    if spec.jitter and x.shape[1] == 3:
        x = _jitter(x, spec.jitter, gen)
    return x


def _random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Pad with zeros and crop back to size at a random offset per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen, device=x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


def _affine(x: torch.Tensor, shift: int, degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate by up to ±``degrees`` and shift by up to ±``shift`` pixels, bilinear, zeros in."""
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=gen, device=x.device) * 2 - 1) * math.radians(degrees)
    moves = (torch.rand(n, 2, generator=gen, device=x.device) * 2 - 1) * shift
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos, -sin, moves[:, 0] * 2 / w], 1),
            torch.stack([sin, cos, moves[:, 1] * 2 / h], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, align_corners=False, padding_mode="zeros")


def _jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Scale brightness, contrast and saturation by random factors in [1 - amount, 1 + amount]."""
    factors = 1 + (torch.rand(3, len(x), 1, 1, 1, generator=gen, device=x.device) * 2 - 1) * amount
    x = x.float() * factors[0]
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 255)
    x = grey.mean((2, 3), keepdim=True) + (x - grey.mean((2, 3), keepdim=True)) * factors[1]
    x = grey + (x - grey) * factors[2]
    return x.clamp(0, 255)
