"""One image file's bytes to uint8 pixels at the dataset's size, with Pillow.

EXIF orientation is applied; palette, alpha (composited on white), 16-bit, CMYK and other modes
end as 8-bit grey (``L``) or RGB. The pixel count is checked from the header before any pixel
is decoded. :mod:`.decoders` spreads the work over processes.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from cnnlab.errors import InvalidDataset

Resize = Literal["squash", "center_crop", "pad"]
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # JPEG includes MPO (phone cameras)
# A file that declares this many more pixels than it has bytes cannot be a real picture (a flat
# PNG stores at most ~350 pixels a byte): a decompression bomb, refused rather than skipped.
BOMB_PIXELS_PER_BYTE = 1000
_GREY_MODES = {"1", "L", "I", "F"}
# Lossy formats (WebP, an RGB JPEG) store a grey picture's colour channels a step or two apart.
GREY_TOLERANCE = 2
_NESTED_ARCHIVES = (
    (0, b"PK\x03\x04"),
    (0, b"\x1f\x8b"),
    (0, b"BZh"),
    (0, b"\xfd7zXZ\x00"),
    (0, b"7z\xbc\xaf\x27\x1c"),
    (0, b"Rar!\x1a\x07"),
    (257, b"ustar"),
)
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
_RESAMPLE = Image.Resampling.BILINEAR  # torchvision's Resize default (antialiased in Pillow)


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8, H×W (grey) or H×W×3
    grey: bool  # the image is grey, or R, G and B are within GREY_TOLERANCE at every pixel
    shorter_side: int  # of the picture as stored, after EXIF orientation


@dataclass(frozen=True)
class Skipped:
    why: str


def is_nested_archive(name: str, head: bytes = b"") -> bool:
    if name.lower().endswith(_ARCHIVE_SUFFIXES):
        return True
    return any(head[at : at + len(magic)] == magic for at, magic in _NESTED_ARCHIVES)


def open_image(data: bytes, name: str, max_pixels: int) -> Image.Image | Skipped:
    """The picture in ``data``, its header read (not its pixels), or why it is skipped;
    :class:`InvalidDataset` for a decompression bomb (a huge size declared in a few bytes)."""
    if not data:
        return Skipped("zero bytes")
    if is_nested_archive(name, data[:512]):
        return Skipped("nested archive")
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
        w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses at twice its own MAX_IMAGE_PIXELS, before we see the size (and warns
        # past it: an error where warnings are errors).
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else max_pixels + 1
        return _too_large(name, pixels, f"{pixels:,} pixels", len(data))
    except Exception:  # UnidentifiedImageError, or a header Pillow chokes on
        return Skipped("not an image")
    if w * h > max_pixels:
        return _too_large(name, w * h, f"{w:,}×{h:,} pixels", len(data))
    return im


def decode_opened(
    im: Image.Image, size: int | None, resize: Resize, cap: int = 64
) -> Decoded | Skipped:
    """An :func:`open_image` picture decoded and shaped to ``size``×``size`` by ``resize``; when
    ``size`` is None (not known yet) only reduced to at most ``cap`` a side, for :func:`fit` to
    finish."""
    try:
        return _decode_opened(im, size, resize, cap)
    except Exception:  # Pillow raises many kinds on damaged data
        return Skipped("undecodable")


def decode(
    data: bytes, name: str, size: int | None, resize: Resize, max_pixels: int, cap: int = 64
) -> Decoded | Skipped:
    """:func:`open_image` then :func:`decode_opened`."""
    opened = open_image(data, name, max_pixels)
    return opened if isinstance(opened, Skipped) else decode_opened(opened, size, resize, cap)


def _too_large(name: str, pixels: int, declared: str, n_bytes: int) -> Skipped:
    if pixels > BOMB_PIXELS_PER_BYTE * n_bytes:
        raise InvalidDataset(
            f"{name} declares {declared} in {n_bytes:,} bytes: a decompression bomb", entry=name
        )
    return Skipped("too large")


def _decode_opened(im: Image.Image, size: int | None, resize: Resize, cap: int) -> Decoded:
    w, h = im.size
    target = size or cap
    # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: ask for no less than the shape needs.
    scale = target / (max(w, h) if resize == "pad" else min(w, h))
    if scale < 1 and im.format in ("JPEG", "MPO"):
        if resize == "squash":
            im.draft(None, (min(w, target), min(h, target)))
        else:
            im.draft(None, (math.ceil(w * scale), math.ceil(h * scale)))
    im.load()
    ImageOps.exif_transpose(im, in_place=True)
    im = _to_8bit(im)
    im = fit(im, size, resize) if size else _reduce(im, cap, resize)
    pixels = np.asarray(im)
    return Decoded(pixels, _is_grey(pixels), min(w, h))


def _is_grey(pixels: np.ndarray) -> bool:
    """Grey to begin with, or colour channels within :data:`GREY_TOLERANCE` of each other."""
    if pixels.ndim == 2:
        return True
    wide = pixels.astype(np.int16)
    spread = np.abs(wide[..., 0] - wide[..., 1]).max(), np.abs(wide[..., 1] - wide[..., 2]).max()
    return bool(max(spread) <= GREY_TOLERANCE)


def _to_8bit(im: Image.Image) -> Image.Image:
    """``L`` or ``RGB``: alpha composited on white, 16-bit scaled down, palettes expanded."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(im, dtype=np.float32)
        return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L")
    if mode in _GREY_MODES:
        return im if mode == "L" else im.convert("L")
    if mode == "P" and "transparency" not in im.info:
        return im.convert("RGB")
    if "A" in mode or "a" in mode or mode == "P":
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if mode == "RGB" else im.convert("RGB")


def fit(im: Image.Image, size: int, resize: Resize) -> Image.Image:
    """``im`` as ``size``×``size``: stretched (squash), its central square scaled (center_crop),
    or scaled to fit and centred on black (pad)."""
    w, h = im.size
    if resize == "squash":
        return im if (w, h) == (size, size) else im.resize((size, size), _RESAMPLE)
    if resize == "center_crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        if (w, h) == (size, size):
            return im
        return im.resize((size, size), _RESAMPLE, box=(left, top, left + side, top + side))
    scale = size / max(w, h)
    inner = (max(1, round(w * scale)), max(1, round(h * scale)))
    scaled = im if inner == (w, h) else im.resize(inner, _RESAMPLE)
    canvas = Image.new(im.mode, (size, size), 0)
    canvas.paste(scaled, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas


def fit_pixels(pixels: np.ndarray, size: int, resize: Resize) -> np.ndarray:
    """:func:`fit` for pixels decoded before the size was known (reduced by :func:`decode`)."""
    if pixels.shape[:2] == (size, size):
        return pixels
    return np.asarray(fit(Image.fromarray(pixels), size, resize))


def _reduce(im: Image.Image, cap: int, resize: Resize) -> Image.Image:
    """``im`` no larger than ``cap`` a side, with what :func:`fit` needs of it kept: its central
    square (center_crop), its aspect ratio (pad), or everything (squash)."""
    w, h = im.size
    if resize == "center_crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        box = (left, top, left + side, top + side)
        out = min(side, cap)
        return im.resize((out, out), _RESAMPLE, box=box) if (out, out) != (w, h) else im
    if resize == "squash":
        out_wh = (min(w, cap), min(h, cap))
    else:
        scale = min(1.0, cap / max(w, h))
        out_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im if out_wh == (w, h) else im.resize(out_wh, _RESAMPLE)
