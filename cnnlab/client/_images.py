"""Images for ``predict``: what the caller passes, as the request body the API takes.

Arrays and nested lists go as JSON ``instances``; anything else (PIL images, files, encoded
bytes) as multipart PNG/JPEG files. PIL and numpy are imported only when needed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def as_items(images: Iterable[Any] | Any) -> Sequence[Any]:
    """One image or many, as a list: a 2-D array is one grey image, a 3-D or 4-D one a batch
    (an image per first index)."""
    if is_array(images) and getattr(images, "ndim", 0) == 2:
        return [images]  # one grey image
    if isinstance(images, bytes | str | os.PathLike) or hasattr(images, "getpixel"):
        return [images]  # one file or PIL image
    return list(images)


def request_body(items: Sequence[Any]) -> dict[str, Any]:
    """The keyword arguments of the ``predict`` request (``json=`` or ``files=``)."""
    if all(is_array(i) for i in items):
        return {"json": {"instances": [i.tolist() if hasattr(i, "tolist") else i for i in items]}}
    return {"files": [("files", encode_image(i)) for i in items]}


def is_array(item: Any) -> bool:
    if isinstance(item, list):
        return True
    return type(item).__module__ == "numpy" and hasattr(item, "tolist")


def encode_image(item: Any) -> tuple[str, bytes]:
    """A file name and encoded bytes for a PIL image, an array, a path or raw bytes."""
    if isinstance(item, bytes | bytearray):
        return "image", bytes(item)
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        return path.name, path.read_bytes()
    from PIL import Image

    if not isinstance(item, Image.Image):
        import numpy as np

        array = np.asarray(item)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        item = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    item.save(buf, format="PNG")
    return "image.png", buf.getvalue()
