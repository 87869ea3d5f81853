"""Exports of a registered model version, for the routes: read its frozen checkpoint, convert it
off the event loop (cnnlab.engine.export), and the headers that describe the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from api.deps import Db
from cnnlab.store import model_versions as registry


@dataclass(frozen=True)
class ExportedFile:
    data: bytes
    filename: str
    media_type: str
    metadata: dict[str, Any]


def _checkpoint(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    from cnnlab.engine.checkpoints import loads

    data = db.call_read(registry.version_data, owner_id, name, version)
    return loads(data)


def _extra(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    view = db.call_read(registry.get_version, owner_id, name, version)
    return {"name": name, "version": version, "job_id": view.job_id}


def metadata(db: Db, owner_id: int, name: str, version: int) -> dict[str, Any]:
    """What a caller of the exported file needs (the file holds the same in its metadata)."""
    from cnnlab.engine.export import export_metadata

    extra = _extra(db, owner_id, name, version)
    return export_metadata(_checkpoint(db, owner_id, name, version), **extra)


def export_version(db: Db, owner_id: int, name: str, version: int, fmt: str) -> ExportedFile:
    """The version's model as an ONNX or TorchScript file (seconds of CPU: run it in a thread)."""
    from cnnlab.engine.export import MEDIA_TYPES, SUFFIXES, ExportFormat, export, export_metadata

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
