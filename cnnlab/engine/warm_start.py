"""Warm starts: a new model begins from another's trained weights (``init`` in the spec).

The two models must be the same architecture with the same options, on images of the same
shape; the head (the last layer, which maps features to classes) is rebuilt when the classes
differ (in count or names): freshly initialised from the job's seed, the rest loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from cnnlab.architectures.registry import architecture_defaults
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.errors import SpecError

# Builder arguments that may differ between the source and the new model.
FREE_ARGUMENTS = ("num_classes", "dropout")
HEAD = "head."


def check_compatible(config: dict[str, Any], init: CheckpointDoc, source: str) -> None:
    """Raise :class:`SpecError` naming ``init`` when ``init``'s model cannot seed a model
    built from ``config`` (:func:`cnnlab.engine.checkpoints.model_config`)."""
    theirs = init["model"]
    if theirs["name"] != config["name"]:
        raise SpecError(
            "init",
            f"{source} is a {theirs['name']} model; this spec's model.arch is {config['name']}",
        )
    # An option newer than ``init``'s checkpoint is missing from it: it was built with the default.
    defaults = architecture_defaults(config["name"])
    ours = {k: v for k, v in config["kwargs"].items() if k not in FREE_ARGUMENTS}
    others = {k: v for k, v in {**defaults, **theirs["kwargs"]}.items() if k not in FREE_ARGUMENTS}
    if ours != others:
        differ = sorted(k for k in ours.keys() | others.keys() if ours.get(k) != others.get(k))
        detail = ", ".join(f"{k} {others.get(k)} here {ours.get(k)}" for k in differ)
        raise SpecError("init", f"{source} does not fit this spec's model: {detail}")


def load_init(model: nn.Module, init: CheckpointDoc, class_names: Sequence[str]) -> bool:
    """Load ``init``'s weights into ``model``; returns whether the head was rebuilt, in which
    case it keeps ``model``'s own (fresh) weights: when ``init`` was trained on other classes
    than ``class_names`` (another count, or other names: output k would mean another class),
    or has no head."""
    own = model.state_dict()
    weights = init["model_state"]
    other_classes = list(init["dataset"]["class_names"]) != list(class_names)
    rebuilt = other_classes or any(
        k.startswith(HEAD) and (k not in weights or weights[k].shape != v.shape)
        for k, v in own.items()
    )
    if rebuilt:
        weights = {k: v for k, v in weights.items() if not k.startswith(HEAD)}
        weights.update({k: v for k, v in own.items() if k.startswith(HEAD)})
    model.load_state_dict(weights)
    return rebuilt


def set_frozen(model: nn.Module, frozen: bool) -> None:
    """Train only the head (``frozen``) or every layer. Each architecture keeps its feature
    layers in ``model.features`` and its head in ``model.head``."""
    for name, param in model.named_parameters():
        if not name.startswith(HEAD):
            param.requires_grad_(not frozen)
