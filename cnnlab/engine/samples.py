"""Images a person can look at: the first ones of a spec's training portion, as PNG files.

What the lab's ``visualize_images`` showed, for the dashboard or a notebook.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.datasets.catalog import get_meta
from cnnlab.datasets.loading import load_split
from cnnlab.engine.augment import augment, generator
from cnnlab.engine.loop import epoch_seed
from cnnlab.engine.splits import split_indices
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec


@dataclass(frozen=True)
class SampleImage:
    index: int  # position in the dataset's train split
    label: int
    class_name: str
    png: bytes


def png_bytes(chw: torch.Tensor) -> bytes:
    """A uint8 C×H×W image (one channel: grey; three: RGB) as a PNG file."""
    from PIL import Image

    pixels = chw.numpy()
    pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def training_samples(
    spec: TrainSpec, n: int, settings: Settings | None = None, *, augmented: bool = False
) -> list[SampleImage]:
    """The first ``n`` images of the spec's training portion (after its validation hold-out);
    ``augmented``: as the spec's augmentation changes them (its draw for the first epoch)."""
    class_names = get_meta(spec.dataset).class_names
    full = load_split(spec.dataset, train=True, settings=settings)
    train_idx, _ = split_indices(spec, len(full))
    idx = train_idx[:n]
    images = full.images[idx]
    if augmented and spec.augment.active:
        gen = generator(epoch_seed(spec.seed, 1), images.device)
        images = augment(images, spec.augment, gen).round().clamp(0, 255).to(torch.uint8)
    samples = []
    for index, image in zip(idx.tolist(), images, strict=True):
        label = int(full.labels[index])
        samples.append(SampleImage(index, label, class_names[label], png_bytes(image)))
    return samples


def label_font(size: int = 13) -> Any:
    """DejaVu Sans, which matplotlib (a dependency) ships, so that a class name in any Latin,
    Greek or Cyrillic script is drawn as written: Pillow's own default font has ASCII only."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def class_grid_png(
    images: torch.Tensor, labels: torch.Tensor, class_names: list[str], per_class: int = 8
) -> bytes:
    """A PNG with one row per class: its name, then its first ``per_class`` images (uint8
    N×C×H×W), each shown at least 48 px tall so small images stay visible."""
    from PIL import Image, ImageDraw

    size = images.shape[-1]
    scale = max(1, -(-48 // size))
    cell, label_w, pad = size * scale, 160, 4
    rows = len(class_names)
    canvas = Image.new(
        "RGB", (label_w + per_class * (cell + pad), max(1, rows) * (cell + pad)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    font = label_font()
    for row, name in enumerate(class_names):
        top = row * (cell + pad)
        draw.text((4, top + cell // 2 - 8), name[:24], fill="black", font=font)
        index = torch.nonzero(labels == row).flatten()[:per_class]
        for col, i in enumerate(index.tolist()):
            chw = images[i].numpy()
            pixels = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
            tile = (
                Image.fromarray(pixels)
                .convert("RGB")
                .resize((cell, cell), Image.Resampling.NEAREST)
            )
            canvas.paste(tile, (label_w + col * (cell + pad), top))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()
