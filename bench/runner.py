"""Run a training command as a child process, timing the whole process, and collect the JSON
lines it prints (one per epoch, then a summary)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProcessRun:
    label: str
    wall_seconds: float
    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class RunFailed(RuntimeError):
    pass


def run_timed(label: str, cmd: list[str], env: dict[str, str]) -> ProcessRun:
    """Start ``cmd`` and time it from launch to exit, startup and imports included. Lines with an
    ``epoch`` field are per-epoch figures; the last other JSON line is the summary."""
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    epochs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    other: list[str] = []
    start = time.perf_counter()
    with subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            record = _json_object(line)
            if record is None:
                other.append(line.rstrip())
            elif "epoch" in record:
                epochs.append(record)
                print(f"  {label} epoch {record['epoch']}: {_brief(record)}", flush=True)
            else:
                summary = record
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(other[-20:])
        raise RunFailed(f"{label} exited with status {proc.returncode}: {' '.join(cmd)}\n{tail}")
    if not epochs:
        raise RunFailed(f"{label} printed no per-epoch JSON lines: {' '.join(cmd)}")
    return ProcessRun(label, wall, epochs, summary)


def _json_object(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _brief(record: dict[str, Any]) -> str:
    return (
        f"{record.get('seconds', float('nan')):.1f}s, "
        f"{record.get('images_per_second', float('nan')):,.0f} img/s, "
        f"val_accuracy {record.get('val_accuracy', float('nan')):.4f}"
    )
