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
    # A search's trial stopped early by the search's pruner; it keeps its metrics and models.
    pruned = "pruned"

    @property
    def ended(self) -> bool:
        return self in ENDED


class SearchStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    # Asked to start no new trial; the running ones go on. Resumed, it runs again.
    paused = "paused"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def ended(self) -> bool:
        return self.value in ENDED_NAMES


ENDED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.pruned})
ENDED_NAMES = frozenset(str(s) for s in ENDED)


class DatasetStatus(enum.StrEnum):
    """An uploaded dataset version's: decoded by a worker, then ready to train on, or failed."""

    ingesting = "ingesting"
    ready = "ready"
    failed = "failed"
