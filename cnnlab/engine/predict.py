"""Predictions from a checkpoint, for pixel arrays and for encoded images (PNG or JPEG)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from PIL import Image

from cnnlab.datasets import decode
from cnnlab.engine.checkpoints import CheckpointDoc, load_model
from cnnlab.engine.training import Normalize
from cnnlab.errors import BadInput, CnnlabError

# An image file may be at most this many times the model's input size along each side (it is
# resized to the input size): 224×224 for 28×28 models, 256×256 for 32×32 ones. The claim in the
# file's header is checked before anything is decoded (a small file can claim a huge canvas).
MAX_SIDE_FACTOR = 8
# A model of an uploaded dataset takes photos as they come: up to this many pixels a side (and
# the ingest's own per-image pixel cap), brought to size the way its dataset's images were.
UPLOAD_MAX_SIDE = 8192
MAX_UPLOAD_PIXELS = 50_000_000
# Formats decoded: whatever else Pillow reads is refused before it is parsed.
IMAGE_FORMATS = ("PNG", "JPEG")


class Predictor:
    """A checkpoint's model, ready to classify batches of images on one device."""

    def __init__(self, ckpt: CheckpointDoc, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = load_model(ckpt, self.device).to(memory_format=torch.channels_last)
        dataset = ckpt["dataset"]
        self.class_names: list[str] = list(dataset["class_names"])
        c, h, w = dataset["shape"]
        self.shape: tuple[int, int, int] = (c, h, w)
        self.normalize = Normalize(dataset, self.device)
        self.epoch: int = ckpt["epoch"]
        # An uploaded dataset's resize mode (None: a built-in's, whose inputs are its size).
        self.resize: str | None = dataset.get("resize")

    # -- inputs -----------------------------------------------------------------------------
    def array_to_chw(self, item: int, instance: Any) -> np.ndarray:
        """One instance, H×W (grey) or H×W×C (colour) with values 0-255, as uint8 C×H×W."""
        c, h, w = self.shape
        try:
            array = np.asarray(instance, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise BadInput(item, "not an array of numbers") from None
        expected = [(h, w), (h, w, 1)] if c == 1 else [(h, w, c)]
        if array.shape not in expected:
            want = " or ".join(str(e) for e in expected)
            raise BadInput(item, f"expected shape {want}, got {array.shape}")
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise BadInput(item, "pixel values must be numbers from 0 to 255")
        pixels = np.rint(array).astype(np.uint8).reshape(h, w, c)
        return pixels.transpose(2, 0, 1)

    @property
    def max_image_size(self) -> tuple[int, int]:
        """The largest image file accepted, (width, height): :data:`MAX_SIDE_FACTOR` times the
        model's input size."""
        _, h, w = self.shape
        if self.resize is not None:
            return UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE
        return MAX_SIDE_FACTOR * w, MAX_SIDE_FACTOR * h

    def _open(self, item: int, blob: bytes) -> Image.Image:
        """The image, its header read and its size checked; nothing decoded yet."""
        max_w, max_h = self.max_image_size
        try:
            with warnings.catch_warnings():
                # Pillow's own guard, for canvases far past ours: an error like the others.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(blob), formats=IMAGE_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadInput(item, f"image is too large: at most {max_w}×{max_h}") from None
        except Exception as exc:  # PIL raises many types for broken files
            raise BadInput(item, f"cannot decode image ({type(exc).__name__})") from None
        if img.width > max_w or img.height > max_h:
            img.close()
            raise BadInput(
                item,
                f"image is too large: {img.width}×{img.height} pixels, at most {max_w}×{max_h} "
                f"for this model ({MAX_SIDE_FACTOR}× its input size)",
            )
        return img

    def image_size(self, item: int, blob: bytes) -> tuple[int, int]:
        """The image's (width, height) from its header, checked against the size limit."""
        with self._open(item, blob) as img:
            return img.size

    def image_to_chw(self, item: int, blob: bytes) -> np.ndarray:
        """Decode a PNG or JPEG file and convert it to the model's channels and size."""
        c, h, w = self.shape
        if self.resize is not None:
            return self._upload_image_to_chw(item, blob)
        with self._open(item, blob) as src:
            try:
                img = src.convert("L" if c == 1 else "RGB")
                if img.size != (w, h):
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                array = np.asarray(img, dtype=np.uint8)
            except Exception as exc:  # a truncated or corrupt file fails here, when decoded
                raise BadInput(item, f"cannot decode image ({type(exc).__name__})") from None
        return array.reshape(h, w, c).transpose(2, 0, 1)

    def _upload_image_to_chw(self, item: int, blob: bytes) -> np.ndarray:
        """As the ingest decoded the dataset's images: EXIF orientation, alpha on white, then
        ``resize`` (squash, center_crop or pad) to the model's size."""

        c, size, _ = self.shape
        self.image_size(item, blob)  # the size limit, from the header
        try:
            resize = cast(decode.Resize, self.resize)
            got = decode.decode(blob, f"input {item}", size, resize, MAX_UPLOAD_PIXELS)
        except CnnlabError as exc:
            raise BadInput(item, exc.message) from None
        if isinstance(got, decode.Skipped):
            raise BadInput(item, f"cannot use the image ({got.why})")
        img = Image.fromarray(got.pixels).convert("L" if c == 1 else "RGB")
        return np.asarray(img, dtype=np.uint8).reshape(size, size, c).transpose(2, 0, 1)

    # -- prediction -------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_chw(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """All images in one forward pass; results in input order."""
        if not images:
            return []
        batch = torch.from_numpy(np.stack(images)).to(self.device)
        probs = torch.softmax(self.model(self.normalize(batch)).float(), dim=1).cpu()
        out = []
        for row in probs:
            label = int(row.argmax())
            out.append(
                {
                    "label": label,
                    "class_name": self.class_names[label],
                    "probabilities": [round(float(p), 6) for p in row],
                }
            )
        return out

    def predict_arrays(self, instances: Sequence[Any]) -> list[dict[str, Any]]:
        return self.predict_chw([self.array_to_chw(i, x) for i, x in enumerate(instances)])

    def predict_images(self, blobs: Sequence[bytes]) -> list[dict[str, Any]]:
        return self.predict_chw([self.image_to_chw(i, b) for i, b in enumerate(blobs)])
