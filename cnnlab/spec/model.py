"""The model a spec trains: its architecture's registry name and builder arguments on a dataset
(what a checkpoint records), and the module built from them on the current device (the meta
device, for the submit-time checks and the budget)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnlab.architectures.registry import architecture_defaults, create_architecture
from cnnlab.datasets.catalog import DatasetMeta
from cnnlab.spec.train import TrainSpec

if TYPE_CHECKING:
    from torch import nn


def model_config(spec: TrainSpec, meta: DatasetMeta) -> dict[str, Any]:
    """The registry name and the builder arguments for a spec on a dataset: every option, the
    architecture's own default where the spec leaves it null, so the checkpoint says it all."""
    options = {**architecture_defaults(spec.model.arch), **spec.model.options()}
    return {
        "name": spec.model.arch,
        "kwargs": {"in_shape": list(meta.shape), "num_classes": meta.num_classes, **options},
    }


def build_model(config: dict[str, Any]) -> nn.Module:
    kwargs = dict(config["kwargs"])
    kwargs["in_shape"] = tuple(kwargs["in_shape"])
    return create_architecture(config["name"], **kwargs)
