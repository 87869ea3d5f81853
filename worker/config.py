"""The workers' reliability settings, read from ``CNNLAB_*`` environment variables like the core
settings: how long a job's lease lasts, how often it may be retried, how often sweeps run."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cnnlab.store import runs


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    # A running job's claim lasts this long unless its worker renews it (it does, a few times
    # per lease, while training). A dead worker's job is taken over this long after it died.
    lease_seconds: float = Field(default=runs.DEFAULT_LEASE_SECONDS, gt=0)
    # Claims of one job before a job whose workers keep dying fails with ``worker_lost``.
    max_attempts: int = Field(default=runs.DEFAULT_MAX_ATTEMPTS, ge=1)
    # Seconds between sweeps for expired leases and lost messages (default: a quarter lease).
    sweep_seconds: float | None = Field(default=None, gt=0)
    # A queued job unclaimed this long after its message was sent is sent again, if its queue
    # has nothing waiting (the message was lost, e.g. with a broker restarted without its data).
    queued_grace_seconds: float = Field(default=runs.DEFAULT_QUEUED_GRACE_SECONDS, gt=0)

    @property
    def sweep_interval(self) -> float:
        return self.sweep_seconds or self.lease_seconds / 4

    @property
    def renew_interval(self) -> float:
        """How often a training worker renews its lease: three chances before it expires."""
        return self.lease_seconds / 3


def get_worker_settings() -> WorkerSettings:
    # Not cached: read once per job or per sweeper, and tests change the environment.
    return WorkerSettings()
