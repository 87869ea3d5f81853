"""The model registry: spec validation, grid search and the builder all go through it.

A builder takes the dataset's input shape and class count plus the spec's model options and returns
an ``nn.Module``. Registration happens when :mod:`cnnlab.architectures.builtin` is imported, which
:func:`list_models` and :func:`create_model` do on first use (so importing this module is cheap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]
_REGISTRY: dict[str, Builder] = {}


def register_model(fn: Builder) -> Builder:
    _REGISTRY[fn.__name__] = fn
    return fn


def _load_builtins() -> None:
    import cnnlab.architectures.builtin  # noqa: F401  (registers the built-in models)


def list_models() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    _load_builtins()
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose from {sorted(_REGISTRY)}") from None
    return builder(**kwargs)
