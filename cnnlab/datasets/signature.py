"""A model's signature: the inputs it takes (channels, size, preprocessing) and the classes it
answers. Read from the checkpoint; predictions and evaluations check what they are given
against it and say what does not fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnlab.datasets.catalog import DatasetMeta
from cnnlab.errors import CnnlabError


class SignatureMismatch(CnnlabError):
    """Inputs the model cannot take: 422 saying what does not fit its signature."""

    code = "signature_mismatch"
    status_code = 422


def of_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The signature a checkpoint's dataset record describes (JSON-ready)."""
    dataset = ckpt["dataset"]
    c, h, w = (int(x) for x in dataset["shape"])
    return {
        "input": {"channels": c, "height": h, "width": w, "dtype": "uint8", "range": [0, 255]},
        "preprocessing": {
            "mean": [float(x) for x in dataset["mean"]],
            "std": [float(x) for x in dataset["std"]],
            # What the predict routes do to an image file of another size or mode.
            "resize": "bilinear",
            "color": "L" if c == 1 else "RGB",
        },
        "class_names": list(dataset["class_names"]),
        "dataset": dataset.get("name"),
    }


def of_meta(meta: DatasetMeta) -> dict[str, Any]:
    """The signature of a model trained on ``meta``'s dataset."""
    record = {
        "name": meta.name,
        "shape": list(meta.shape),
        "class_names": list(meta.class_names),
        "mean": list(meta.mean),
        "std": list(meta.std),
    }
    return of_checkpoint({"dataset": record})


def input_shape(signature: dict[str, Any]) -> tuple[int, int, int]:
    i = signature["input"]
    return int(i["channels"]), int(i["height"]), int(i["width"])


def check_images(signature: dict[str, Any], shape: Sequence[int], what: str) -> None:
    """Images of C×H×W ``shape`` must be what the model takes, as they are (no resizing)."""
    want = input_shape(signature)
    if tuple(int(x) for x in shape) != want:
        raise SignatureMismatch(
            f"{what} holds {_shape(shape)} images; the model takes {_shape(want)} "
            f"(channels×height×width)",
            expected=list(want),
            got=[int(x) for x in shape],
        )


def label_map(signature: dict[str, Any], classes: Sequence[str], what: str) -> list[int]:
    """For each of the set's classes, the model's index of the class of the same name. Every
    class of the set must be one of the model's (a subset is fine); else 422 naming them."""
    model_classes = list(signature["class_names"])
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [c for c in classes if c not in index]
    if unknown:
        raise SignatureMismatch(
            f"{what} has classes the model does not know: {unknown}; "
            f"the model's classes are {model_classes}",
            unknown_classes=unknown,
            model_classes=model_classes,
        )
    return [index[c] for c in classes]


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(int(x)) for x in shape)
