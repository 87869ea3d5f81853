"""Which specs can train as one pack: a pure rule on the spec, so the lifecycle can group queued
trials without the torch engine that trains them (:mod:`cnnlab.engine.packed`)."""

from __future__ import annotations

import json

from cnnlab.spec.train import TrainSpec

# The optimiser fields packed trials may differ in.
FREE_OPTIMIZER_FIELDS = ("lr", "momentum", "weight_decay", "nesterov")


def pack_key(spec: TrainSpec) -> str | None:
    """Specs with equal keys can train as one pack; None: this spec never packs."""
    if spec.optimizer.name != "sgd" or spec.init is not None or spec.freeze is not None:
        return None
    doc = spec.model_dump(mode="json")
    for name in FREE_OPTIMIZER_FIELDS:
        doc["optimizer"].pop(name)
    if not spec.model.dropout and spec.class_weight is None:
        doc.pop("seed")  # nothing shared is random: each trial's batch order is its own
    return json.dumps(doc, sort_keys=True)
