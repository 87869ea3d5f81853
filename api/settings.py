"""Limits of the HTTP API, read from ``CNNLAB_*`` environment variables like the core settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    # Seconds a checked token is trusted without asking the database again (0: always ask), so
    # a revoked token stops working within this time.
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    # Request bodies other than predictions' (which have the limits below): a spec is well under
    # a kilobyte, a search of the largest grid a few. Past it the answer is 413, before parsing.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Prediction uploads: images (files or JSON instances) per request, bytes per file, bytes per
    # request. Past any of them the answer is 413.
    predict_max_images: int = Field(default=256, ge=1)
    predict_max_file_bytes: int = Field(default=4 * MIB, ge=1)
    predict_max_request_bytes: int = Field(default=32 * MIB, ge=1)
    # Jobs one user may have queued or running at once, a search's trials included; a
    # submission past it is 429.
    max_active_jobs: int = Field(default=20, ge=1)
    # Trained models kept in memory for predictions, least recently used evicted first.
    predictor_cache_size: int = Field(default=8, ge=1)
    # Torch threads per forward pass in the API process (requests already run in parallel).
    predict_threads: int = Field(default=1, ge=1)
    # Model exports (ONNX, TorchScript) converted at once by one API process; one more is 503
    # with Retry-After. Files made are kept for repeat downloads: this many per process.
    max_concurrent_exports: int = Field(default=2, ge=1)
    export_cache_size: int = Field(default=16, ge=0)
    # Seconds one process reuses its /readyz answer and /metrics' database figures (0: check
    # on every call), so a flood of probes or scrapes costs the database one check a second.
    ops_cache_seconds: float = Field(default=1.0, ge=0)
