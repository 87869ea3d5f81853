"""A check of JSON pixel arrays against the model's image shape, before numpy sees them.

JSON can hold anything: ragged rows, strings, nulls, booleans, lists nested thousands deep,
integers too big for a float. Walking the nested lists in Python stops at the first thing out of
place, so a huge or deeply nested instance costs no more than the pixels it gets right, and the
error says where the problem is (``item``, row, column).
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import BadInput


def _shape_text(shape: tuple[int, int, int]) -> str:
    c, h, w = shape
    return f"({h}, {w}) or ({h}, {w}, 1)" if c == 1 else f"({h}, {w}, {c})"


def _pixel(item: int, where: str, value: Any) -> None:
    # bool is an int subclass; true/false as a pixel is a mistake, not 1/0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(item, f"{where}: expected a number from 0 to 255, got {_kind(value)}")
    # Compared as they are: a huge integer would overflow math.isfinite's float conversion.
    if not (0 <= value <= 255):
        huge = isinstance(value, int) and abs(value) >= 10**12
        shown = "a number too large to show" if huge else repr(value)
        raise BadInput(item, f"{where}: pixel values must be numbers from 0 to 255, got {shown}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return "a number"


_NUMBER = (int, float)  # exact types: a bool is an int subclass but no pixel


def _row_is_plain(row: list[Any], c: int) -> bool:
    """The common case, checked without building a message per pixel."""
    if c == 1:
        return all(type(p) in _NUMBER and 0 <= p <= 255 for p in row)
    return all(
        type(p) is list and len(p) == c and all(type(v) in _NUMBER and 0 <= v <= 255 for v in p)
        for p in row
    )


def check_instance(item: int, instance: Any, shape: tuple[int, int, int]) -> None:
    """Raise :class:`BadInput` unless ``instance`` is H×W (grey) or H×W×C nested lists of
    numbers from 0 to 255, for a model that takes C×H×W images."""
    c, h, w = shape
    expected = f"expected shape {_shape_text(shape)}"
    if not isinstance(instance, list) or len(instance) != h:
        raise BadInput(item, f"{expected}: got {_kind(instance)} instead of {h} rows")
    for y, row in enumerate(instance):
        if not isinstance(row, list) or len(row) != w:
            raise BadInput(item, f"{expected}: row {y} is {_kind(row)}, not {w} pixels")
        if not _row_is_plain(row, c):
            _check_row(item, y, row, c, expected)


def _check_row(item: int, y: int, row: list[Any], c: int, expected: str) -> None:
    """Pixel by pixel, to say exactly where a row goes wrong (or accept H×W×1 pixels)."""
    for x, pixel in enumerate(row):
        where = f"row {y}, column {x}"
        if isinstance(pixel, list):
            if len(pixel) != c:
                raise BadInput(item, f"{expected}: {where} has {len(pixel)} channels, not {c}")
            for channel in pixel:
                _pixel(item, where, channel)
        elif c == 1:
            _pixel(item, where, pixel)
        else:
            raise BadInput(item, f"{expected}: {where} is {_kind(pixel)}, not {c} channels")


def check_instances(instances: list[Any], shape: tuple[int, int, int]) -> None:
    for item, instance in enumerate(instances):
        check_instance(item, instance, shape)
