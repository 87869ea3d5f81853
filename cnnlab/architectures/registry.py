"""The architectures a spec may name (``model.arch``): spec validation, the search and the
builder all go through this table.

A builder takes the dataset's input shape and class count plus the spec's model options and returns
an ``nn.Module``. The built-in ones (:data:`cnnlab.architectures.builtin.BUILTIN`) join the table
on first use of :func:`list_architectures` or :func:`create_architecture`, so importing this module
stays cheap (no torch); :func:`register_architecture` adds another.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]
_REGISTRY: dict[str, Builder] = {}
# Every builder's first two arguments: they come from the dataset, not from the spec.
DATA_ARGUMENTS = ("in_shape", "num_classes")


def register_architecture(fn: Builder) -> Builder:
    _REGISTRY[fn.__name__] = fn
    return fn


def _load_builtins() -> None:
    from cnnlab.architectures.builtin import BUILTIN  # torch: on first use only

    for name, builder in BUILTIN.items():
        _REGISTRY.setdefault(name, builder)


def list_architectures() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_architecture(name: str, **kwargs: Any) -> nn.Module:
    return _builder(name)(**kwargs)


def _builder(name: str) -> Builder:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; choose from {sorted(_REGISTRY)}") from None


def architecture_defaults(name: str) -> dict[str, Any]:
    """A builder's own options and their defaults (lists for tuples, as JSON holds them)."""
    params = inspect.signature(_builder(name)).parameters.values()
    return {
        p.name: list(p.default) if isinstance(p.default, tuple) else p.default
        for p in params
        if p.name not in DATA_ARGUMENTS
    }


def architecture_options(name: str) -> list[str]:
    return list(architecture_defaults(name))


def describe_architecture(name: str) -> dict[str, Any]:
    """``name``, what it is for (the builder's docstring, first paragraph) and its options with
    their defaults: what ``GET /v1/architectures`` shows."""
    doc = inspect.getdoc(_builder(name)) or ""
    return {
        "name": name,
        "description": " ".join(doc.split("\n\n")[0].split()),
        "options": architecture_defaults(name),
    }
