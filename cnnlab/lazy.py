"""The modules imported inside a function, and why: each pulls in a library that takes a while
to import (Optuna, torch, SQLAlchemy, httpx, …) and is needed only by some calls, so importing
the service, the worker's parent, the ``cnnlab`` command line or the client stays fast.
Everything else is imported at the top of its module.

A test (``tests/core/test_layers.py``) holds the code to these lists: in the core's rooms a
function-level import of a cnnlab module not in :data:`DEFERRED` fails it; in the front ends
(``cnnlab.cli``, ``cnnlab.client``, ``api``, ``worker``, ``bench``) any function-level import
not in :data:`DEFERRED` or :data:`FRONT_ENDS`. The imports stay ordinary ``from … import``
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

_TORCH = "torch (only the commands and benchmarks that train, decode or load weights)"
_DATABASE = "SQLAlchemy and Alembic (only the commands that open the database)"
_SERVICE_BENCH = "the service benchmark's own clients and server helpers"

FRONT_ENDS: dict[str, str] = {
    "torch": _TORCH,
    "torch.nn": _TORCH,
    "torch.nn.functional": _TORCH,
    "torch.utils.data": _TORCH,
    "torchvision": _TORCH,
    "cnnlab.engine": _TORCH,
    "cnnlab.engine.augment": _TORCH,
    "cnnlab.engine.checkpoints": _TORCH,
    "cnnlab.engine.loop": _TORCH,
    "cnnlab.engine.packed": _TORCH,
    "cnnlab.engine.predict": _TORCH,
    "cnnlab.engine.training": _TORCH,
    "cnnlab.lifecycle": "torch, through the lifecycle (the service's commands)",
    "worker.sweeper": "torch, through the lifecycle (the service's commands)",
    "cnnlab.store": _DATABASE,
    "cnnlab.store.db": _DATABASE,
    "cnnlab.store.migrate": _DATABASE,
    "cnnlab.store.tables": _DATABASE,
    "cnnlab.store.users": _DATABASE,
    "alembic.script": _DATABASE,
    "sqlalchemy.engine": _DATABASE,
    "cnnlab.datasets.catalog": "the dataset catalog (only the commands that use local data)",
    "cnnlab.datasets.sizes": "the dataset catalog (only the commands that use local data)",
    "ctypes": "ctypes (only `serve`, for its children)",
    "cnnlab.spec.model": "the spec's Pydantic models (only `cnnlab train` builds them)",
    "cnnlab.spec.train": "the spec's Pydantic models (only `cnnlab train` builds them)",
    "cnnlab.client": "httpx (only the commands that talk to a server)",
    "tqdm": "tqdm (the progress bars of the commands that wait)",
    "tqdm.auto": "tqdm (the progress bars of the commands that wait)",
    "kombu": "Kombu (doctor's broker check)",
    "uvicorn": "uvicorn (the commands that serve the API)",
    "worker.process": "Celery (the commands that run a worker)",
    "worker.webhooks": "SQLAlchemy and httpx (the commands that run a worker)",
    "pandas": "pandas (the client's tables, an optional extra)",
    "numpy": "NumPy (the client's image helpers)",
    "PIL": "Pillow (images: the client's helpers, the API's plots, benchmarks)",
    "matplotlib.figure": "Matplotlib (the API's plots, drawn on request)",
    "matplotlib.backends.backend_agg": "Matplotlib (the API's plots, drawn on request)",
    "psycopg": _SERVICE_BENCH,
    "redis": _SERVICE_BENCH,
    "uvloop": _SERVICE_BENCH,
    "cnnlab.testing.postgres": _SERVICE_BENCH,
}
