"""The architectures a spec may name (``model.arch``): spec validation, the search and the
builder all go through this table.

A builder takes the dataset's input shape and class count plus the spec's model options and returns
an ``nn.Module``. The built-in ones (:data:`cnnlab.architectures.builtin.BUILTIN`) join the table
on first use of :func:`list_architectures` or :func:`create_architecture`, so importing this module
stays cheap (no torch); :func:`register_architecture` adds another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]
_REGISTRY: dict[str, Builder] = {}


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
    _load_builtins()
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; choose from {sorted(_REGISTRY)}") from None
    return builder(**kwargs)
