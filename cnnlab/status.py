"""A job's and a search's statuses, and which of them are final.

Plain Python (no torch, no SQLAlchemy), so the HTTP client and the CLI share it with the
service. Which status may follow which is :mod:`cnnlab.lifecycle`'s to say.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})
ENDED_NAMES = frozenset(str(s) for s in ENDED)
