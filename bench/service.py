"""Service figures — prediction latency and throughput, submit→running delay, GET requests/s.

Not measured yet: the HTTP service is still being built. ``run`` says so, so that
``python -m bench all`` already has its final shape.
"""

from __future__ import annotations

from typing import Any


def run() -> dict[str, Any]:
    return {"benchmark": "service", "skipped": "the service benchmark is not written yet"}


def report(result: dict[str, Any]) -> None:
    print(f"service: skipped ({result['skipped']})")
