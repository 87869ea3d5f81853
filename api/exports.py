"""Exports of a registered model version, for the routes: read its frozen checkpoint, convert it
off the event loop (cnnlab.engine.export), and the headers that describe the file.

A conversion costs seconds of CPU and runs one at a time in the process (the exporters share
global state), so each process converts at most ``max_concurrent_exports`` at once, and a request
past that is 503 ``overloaded`` with ``Retry-After`` rather than a threadpool thread left waiting.
A version's weights are frozen, so each file made is kept (``export_cache_size`` files, least
recently used dropped first) by owner, version id (never reused) and format.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from api.deps import Db
from api.ratelimit import Overloaded
from api.settings import ApiSettings
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.export import MEDIA_TYPES, SUFFIXES, ExportFormat, export, export_metadata
from cnnlab.lru import LRU
from cnnlab.store import model_versions as registry


@dataclass(frozen=True)
class ExportedFile:
    data: bytes
    filename: str
    media_type: str
    metadata: dict[str, Any]


def _checkpoint(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    data = db.call_read(registry.version_data, owner_id, name, version)
    return loads(data)


def _extra(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    view = db.call_read(registry.get_version, owner_id, name, version)
    return {"name": name, "version": version, "job_id": view.job_id}


def metadata(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    """What a caller of the exported file needs (the file holds the same in its metadata)."""
    extra = _extra(db, owner_id, name, version)
    return export_metadata(_checkpoint(db, owner_id, name, version), **extra)


class ExportService:
    """One app's export slots and its cache of files made."""

    def __init__(self, api_settings: ApiSettings) -> None:
        self.max_concurrent = api_settings.max_concurrent_exports
        self.slots = threading.BoundedSemaphore(self.max_concurrent)
        self.cache: LRU[tuple[int, str, str], ExportedFile] = LRU(api_settings.export_cache_size)


def export_service(app: Any) -> ExportService:
    service: ExportService | None = getattr(app.state, "exports", None)
    if service is None:
        service = app.state.exports = ExportService(app.state.api_settings)
    return service


def export_cached(
    db: Db, service: ExportService, owner_id: int, name: str, version: int, fmt: str
) -> ExportedFile:
    """The file from the cache, or made now if a slot is free (:class:`Overloaded` if not).
    Runs in a thread."""
    key = (owner_id, db.call_read(registry.version_id, owner_id, name, version), fmt)
    cached = service.cache.get(key)
    if cached is not None:
        return cached
    if not service.slots.acquire(blocking=False):
        raise Overloaded(
            f"{service.max_concurrent} exports already running in this process; try again shortly"
        )
    try:
        exported = export_version(db, owner_id, name, version, fmt)
    finally:
        service.slots.release()
    service.cache.put(key, exported)
    return exported


def export_version(db: Db, owner_id: int, name: str, version: int, fmt: str) -> ExportedFile:
    """The version's model as an ONNX or TorchScript file (seconds of CPU: run it in a thread)."""
    kind = ExportFormat(fmt)
    extra = _extra(db, owner_id, name, version)
    ckpt = _checkpoint(db, owner_id, name, version)
    return ExportedFile(
        data=export(ckpt, kind, **extra),
        filename=f"{name}-v{version}{SUFFIXES[kind]}",
        media_type=MEDIA_TYPES[kind],
        metadata=export_metadata(ckpt, **extra),
    )


def _csv(values: list[Any]) -> str:
    return ",".join(str(v) for v in values)


def headers(exported: ExportedFile) -> dict[str, str]:
    """The metadata again as response headers (ASCII: JSON with non-ASCII escaped)."""
    meta = exported.metadata
    return {
        "Content-Disposition": f'attachment; filename="{exported.filename}"',
        "X-Cnnlab-Model": str(meta["name"]),
        "X-Cnnlab-Version": str(meta["version"]),
        "X-Cnnlab-Input-Name": str(meta["input_name"]),
        "X-Cnnlab-Input-Shape": _csv(meta["input_shape"]),
        "X-Cnnlab-Input-Range": _csv(meta["input_range"]),
        "X-Cnnlab-Mean": _csv(meta["mean"]),
        "X-Cnnlab-Std": _csv(meta["std"]),
        "X-Cnnlab-Class-Names": json.dumps(meta["class_names"], ensure_ascii=True),
    }
