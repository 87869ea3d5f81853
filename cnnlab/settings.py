"""The one settings object, read from ``CNNLAB_*`` environment variables.

Imports neither torch nor FastAPI, so the CLI, the API, the worker and Alembic all read it cheaply.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_BROKER = "embedded"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".cnnlab")
    data_dir: Path | None = None
    download: bool = False
    database_url: str | None = None
    broker_url: str = EMBEDDED_BROKER
    # Debian's dataset-fashion-mnist package; searched after data_dir.
    debian_fashion_mnist: Path = Path("/usr/share/datasets/fashion-mnist")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.home / "data"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cnnlab.db'}"

    # -- request limits of one API process (in-process counters: each process has its own) --
    # Prediction requests served at once; one more is 503 with Retry-After.
    max_concurrent_predictions: int = Field(default=8, ge=1)
    # Decoded pixels (width × height, summed over a request's image files) per prediction
    # request; past it the answer is 413. 2**24 is 256 images of 256×256 pixels.
    predict_max_pixels_per_request: int = Field(default=2**24, ge=1)
    # Requests per minute per token (a bucket that refills continuously; 0: no limit); past it
    # the answer is 429 with Retry-After.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    # Event streams one user may hold open at once; one more is 429.
    max_event_streams: int = Field(default=8, ge=1)
    # Failed token checks per minute from one client address before its requests with tokens
    # not recently verified are 429 (0: no limit).
    auth_failures_per_minute: int = Field(default=20, ge=0)

    # -- retention --
    # Bytes one user may keep stored: the checkpoints of their jobs plus the frozen weights of
    # their registered model versions (0: no limit). A submission (job or search) while at or
    # past it is 422 ``storage_quota``; deleting ended jobs and searches frees their bytes.
    max_storage_bytes: int = Field(default=5 * 2**30, ge=0)

    # -- uploaded datasets --
    # Bytes one dataset upload (the archive, as sent) may hold; past it the answer is 413, and
    # a body that declares a larger Content-Length is refused before it is read.
    dataset_max_bytes: int = Field(default=2 * 2**30, ge=1)
    # What the ingest (on a worker) accepts of an archive; past any of them the version fails
    # with ``invalid_dataset`` and nothing is stored. Entries (files and folders) of one archive:
    dataset_max_files: int = Field(default=200_000, ge=1)
    # Uncompressed bytes of one archive, as declared and as counted while decompressing:
    dataset_max_uncompressed_bytes: int = Field(default=8 * 2**30, ge=1)
    # Compression ratio of a member or the whole archive (zip bombs), judged past 1 MiB:
    dataset_max_ratio: float = Field(default=200.0, gt=1)
    # Pixels (width × height) one image may declare, read from its header before decoding:
    dataset_max_image_pixels: int = Field(default=50_000_000, ge=1)
    # Seconds a partly received upload's temporary file (``$CNNLAB_HOME/uploads``) may go
    # unwritten while no live upload holds it (its API process was killed) before the API
    # removes it, at start and every few minutes:
    dataset_upload_stale_seconds: float = Field(default=600.0, ge=1)

    # -- compute budgets, checked at submit for jobs and every search trial (cnnlab.spec.budget) --
    # Parameters of the spec's model (checkpoints hold 4 bytes each, twice: last and best).
    max_model_params: int = Field(default=10_000_000, ge=1)
    # Peak activation memory of one training step at the spec's batch size, as estimated by
    # cnnlab.spec.budget (float32 outputs of every layer, kept for the backward pass, and as much
    # again for their gradients).
    max_activation_bytes: int = Field(default=8 * 2**30, ge=1)
    # A job's training compute: FLOPs per image × 3 (forward and backward) × training images
    # × epochs, in TFLOPs (10**12).
    max_job_tflops: float = Field(default=5_000.0, gt=0)
    # The training task's time limit assumes at least this throughput (GFLOP/s, training
    # FLOPs as above) plus a fixed allowance per step and per attempt; an attempt running past
    # it fails with ``time_limit_exceeded``. Conservative on purpose: a backstop for a stuck
    # or hopelessly slow job, not a schedule (0: no time limit).
    min_throughput_gflops: float = Field(default=5.0, ge=0)

    # -- workers --
    # Seconds between a worker's heartbeats (its row in ``workers``); a worker whose last one
    # is older than three of these is not live (GET /v1/workers; the GPU check at submit).
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    # A ``device: cuda`` job submitted while no live worker serves the gpu queue: 0 refuses it
    # at once (422 ``no_gpu_worker``); more accepts it, and the sweeper fails it with that error
    # once it has been queued this long with still no live GPU worker.
    gpu_worker_grace_seconds: float = Field(default=0.0, ge=0)
    # Pool processes per visible GPU on a gpu worker (``--concurrency`` overrides): trials of the
    # lab's size leave most of a GPU idle, so several train on one device at once.
    trials_per_gpu: int = Field(default=2, ge=1)
    # Most trials of one search a worker trains as one packed model (cnnlab.engine.packed) when
    # their specs differ only in SGD settings and seed; 1 turns packing off.
    pack_trials: int = Field(default=8, ge=1)
    # Pack on CPU workers too. Off: on a CPU a pack is no faster than its trials one after
    # another (``python -m bench packed`` measured 0.52× on a 2-core machine).
    pack_on_cpu: bool = False

    @property
    def worker_live_seconds(self) -> float:
        """How recent a heartbeat must be for its worker to count as live."""
        return 3 * self.worker_heartbeat_seconds

    # -- webhooks --
    # Deliver webhooks to private, loopback and link-local addresses too (tests, a lab's own
    # network). Off: such a URL is refused when the webhook is created and again at delivery.
    webhook_allow_private: bool = False
    # Webhooks one user may have; one more is 422 ``too_many_webhooks``.
    max_webhooks_per_user: int = Field(default=20, ge=1)
    # Seconds one webhook request may take in all (connect, send, the answer's headers), however
    # the receiver paces its bytes; past it the attempt fails and is retried.
    webhook_deadline_seconds: float = Field(default=10.0, gt=0)
    # Encrypts webhook signing secrets at rest (any long random string). Unset: a key kept in
    # ``$CNNLAB_HOME/secret.key``, made on first use; processes on several hosts need this set.
    secret_key: SecretStr | None = None

    # -- batch predictions (cnnlab.engine.batch) --
    # Bytes of one archive of images posted for a batch prediction (stored until the job is
    # deleted); past it the upload stops with 413 before the rest is read.
    batch_max_bytes: int = Field(default=512 * 2**20, ge=1)
    # Files of one archive; past it the archive is refused (413) before any is decoded.
    batch_max_files: int = Field(default=100_000, ge=1)
    # Inputs per forward pass and per commit of result rows: a worker killed mid-way loses at
    # most one chunk's work.
    batch_chunk: int = Field(default=512, ge=1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
