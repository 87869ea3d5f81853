"""The modules the core imports inside a function, and why: each pulls in a library that takes a
while to import (Optuna, torch) and is needed only by some calls, so importing the service, the
worker's parent or the CLI stays fast. Everything else is imported at the top of its module.

A test (``tests/core/test_layers.py``) holds the core to this list: a function-level import of a
cnnlab module that is not named here fails it. The imports stay ordinary ``from … import``
statements, so type checking and the layer contract (``lint-imports``) see them.
"""

from __future__ import annotations

DEFERRED: dict[str, str] = {
    "cnnlab.search.body": "Optuna (the samplers draw a search's first trials)",
    "cnnlab.search.sampling": "Optuna (its samplers)",
    "cnnlab.search.space": "Optuna (its distributions)",
    "cnnlab.search.trials": "Optuna (the samplers)",
    "cnnlab.search.pruning": "Optuna (its pruners)",
    "cnnlab.datasets.loading": "torch and torchvision (decoding)",
    "cnnlab.datasets.ingest": "torch and Pillow (an upload's decoded tensors)",
    "cnnlab.architectures.builtin": "torch (the builders)",
}
