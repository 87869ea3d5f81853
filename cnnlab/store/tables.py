"""The tables, as SQLAlchemy 2 typed models. Alembic autogenerates migrations from this metadata."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cnnlab.status import DatasetStatus, JobStatus, SearchStatus

# Stable constraint names, so migrations can refer to (and drop) them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32
JOB_KIND_TRAIN = "train"
JOB_NAME_LENGTH = 200
JOB_NOTES_LENGTH = 5000
JOB_TAG_LENGTH = 64
JOB_TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$"
JOB_MAX_TAGS = 20
BATCH_FILE_LENGTH = 1000
TOKEN_NAME_LENGTH = 100


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use cnnlab.store.tables.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CheckpointKind(enum.StrEnum):
    last = "last"
    best = "best"


def _str_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # VARCHAR on every backend (no native ENUM type to migrate), values stored as written.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Token(Base):
    """An API token. Only its SHA-256 hash is stored; the token itself is shown once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the token is for ("laptop", "ci"), shown by `cnnlab token list`; the id is public.
    name: Mapped[str | None] = mapped_column(String(TOKEN_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Past it the token is refused like a revoked one (None: never expires).
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class Search(Base):
    __tablename__ = "searches"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    base: Mapped[dict[str, Any]]
    # A grid search's grid ({} for a sampled one), or a sampled search's space (None for a grid).
    grid: Mapped[dict[str, Any]]
    space: Mapped[dict[str, Any] | None]
    sampler: Mapped[str] = mapped_column(String(8), default="grid")
    # Trials the search runs in all (a grid's points); they are added as earlier ones end.
    num_trials: Mapped[int | None]
    seed: Mapped[int] = mapped_column(default=0)
    pruner: Mapped[dict[str, Any] | None]
    # Trials queued or running at once; the rest wait inside the search, not in the queue.
    max_concurrent_trials: Mapped[int | None]
    metric: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[SearchStatus] = mapped_column(
        _str_enum(SearchStatus, "search_status"), default=SearchStatus.queued
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"name": model, "alias": alias or None}: the best trial is registered when the search ends.
    register_best_as: Mapped[dict[str, Any] | None]
    # A pointer, not a foreign key: jobs already point at searches, and a cycle of foreign keys
    # would need ALTER TABLE, which SQLite lacks. Set once every trial has ended.
    best_job_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    trials: Mapped[list[Job]] = relationship(
        back_populates="search", order_by="Job.trial_index", passive_deletes=True
    )

    __table_args__ = (Index("ix_searches_owner_created", "owner_id", "created_at", "id"),)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    spec: Mapped[dict[str, Any]]
    status: Mapped[JobStatus] = mapped_column(
        _str_enum(JobStatus, "job_status"), default=JobStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    best_val_accuracy: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    error: Mapped[dict[str, Any] | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    # The claim of the worker running the job: renewed while it trains; once past, the job may
    # be taken over (``attempts`` counts the claims and fences out the previous holder).
    lease_expires_at: Mapped[datetime | None]
    # When the job's message was last sent (None: at creation); a queued job that no worker
    # claimed long after is sent again, as its message may have been lost.
    enqueued_at: Mapped[datetime | None]
    search_id: Mapped[str | None] = mapped_column(
        ForeignKey("searches.id", ondelete="CASCADE"), index=True
    )
    trial_index: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[dict[str, Any] | None]
    # What the job does: train (the default), or score registered models on a worker
    # (evaluate, compare, batch_predict); every kind runs through the same lifecycle.
    kind: Mapped[str] = mapped_column(String(16), default=JOB_KIND_TRAIN, server_default="train")
    # The registered model an evaluate, compare or batch_predict job scores (a pointer).
    model_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # What it found, once it succeeded (metrics, comparison, counts of a batch).
    result: Mapped[dict[str, Any] | None]
    # The receipt: versions, device, dataset and seed, written when a worker starts it.
    environment: Mapped[dict[str, Any] | None]
    # An evaluation's or comparison's images scored so far, while it runs: {"done", "total"}.
    progress: Mapped[dict[str, Any] | None]
    # The inputs its model takes and the classes it answers (a train job's, from its dataset).
    signature: Mapped[dict[str, Any] | None]
    # The owner's words for it: set at submit, editable (PATCH /v1/jobs/{id}).
    name: Mapped[str | None] = mapped_column(String(JOB_NAME_LENGTH))
    notes: Mapped[str | None] = mapped_column(String(JOB_NOTES_LENGTH))
    # The epoch early stopping ended the job at (it succeeded with the best epoch's weights).
    stopped_early_at: Mapped[int | None] = mapped_column(Integer)

    search: Mapped[Search | None] = relationship(back_populates="trials")
    tag_rows: Mapped[list[JobTag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="JobTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    __table_args__ = (
        Index("ix_jobs_owner_created", "owner_id", "created_at", "id"),
        Index("ix_jobs_owner_kind_created", "owner_id", "kind", "created_at", "id"),
        Index("ix_jobs_model_kind", "model_id", "kind"),
        # Live jobs among all of them: the sweeper's queries and the active-job quota's.
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_owner_status", "owner_id", "status"),
    )


class JobTag(Base):
    """One tag of a job: rows, not a JSON list, so ``GET /v1/jobs?tag=T`` is an indexed query
    on every backend."""

    __tablename__ = "job_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(JOB_TAG_LENGTH), index=True)

    __table_args__ = (UniqueConstraint("job_id", "tag"),)


class JobInput(Base):
    """The input a job was given as bytes (a batch prediction's archive of images), so a worker
    on any machine can read it: a blob (``checksum``), kept until the job ends, and counted in
    its owner's storage meanwhile."""

    __tablename__ = "job_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    checksum: Mapped[str | None] = mapped_column(String(64))  # sha256, hex
    # Inputs stored before blobs: the bytes themselves.
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchPredictionRow(Base):
    """One input of a batch prediction: its class, or why it could not be read. ``index`` is
    its place among the inputs; unique per job, so a resumed job never writes a row twice."""

    __tablename__ = "batch_prediction_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    file: Mapped[str] = mapped_column(String(BATCH_FILE_LENGTH))
    class_name: Mapped[str | None] = mapped_column(String(200))
    probability: Mapped[float | None] = mapped_column(Float)
    top_k: Mapped[list[Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("job_id", "index"),)


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float] = mapped_column(Float)
    val_accuracy: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    images_per_second: Mapped[float | None] = mapped_column(Float)
    # The learning rate of the epoch's last step (the schedule's).
    lr: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "epoch"),)


class Checkpoint(Base):
    """The job's "last" (for resuming) and "best" (for predicting) checkpoints, as bytes."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[CheckpointKind] = mapped_column(_str_enum(CheckpointKind, "checkpoint_kind"))
    epoch: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "kind"),)


# -- the model registry ------------------------------------------------------------------------
# A user's named models, each a series of frozen versions, and aliases ("production") that point
# at one version. The rows are the registry's alone (cnnlab.store.model_versions): a version is a
# copy, not a job status, so job ids here are pointers (lineage), not foreign keys, and a version
# outlives the job it came from.

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
# Aliases start with a letter, so ``NAME@3`` (a version) and ``NAME@production`` cannot clash.
MODEL_ALIAS_PATTERN = r"^[a-z][a-z0-9._-]{0,62}$"
MODEL_NAME_LENGTH = 63
MODEL_DESCRIPTION_LENGTH = 1000
DATASET_REF_LENGTH = 80


class RegisteredModel(Base):
    """One owner's model name. ``last_version`` is the highest version number ever given:
    numbers are never reused, so ``v3`` always means the same weights."""

    __tablename__ = "registered_models"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        Index("ix_registered_models_owner_created", "owner_id", "created_at", "id"),
    )


class ModelVersion(Base):
    """A frozen copy of a job's checkpoint, with what it was trained on and how well it did."""

    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    search_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    checkpoint_kind: Mapped[CheckpointKind] = mapped_column(
        _str_enum(CheckpointKind, "model_checkpoint_kind")
    )
    epoch: Mapped[int] = mapped_column(Integer)
    # A built-in's name, or an upload's NAME@V (a 63-character name and a 9-digit version).
    dataset: Mapped[str] = mapped_column(String(DATASET_REF_LENGTH))
    arch: Mapped[str] = mapped_column(String(64))
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(String(MODEL_DESCRIPTION_LENGTH), default="")
    # The job's receipt and the model's signature (inputs, preprocessing, class names).
    environment: Mapped[dict[str, Any] | None]
    signature: Mapped[dict[str, Any] | None]
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Loaded only when asked for: listing versions must not read every model's weights.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_id", "version"),)


class ModelAlias(Base):
    """A movable name for one version of a model (``production``, ``candidate``)."""

    __tablename__ = "model_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(MODEL_NAME_LENGTH))
    # CASCADE only so that deleting a whole model (or user) needs no ordering; the registry
    # refuses to delete a version an alias points at (409) before the database is asked.
    version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_id", "alias"),)


class Worker(Base):
    """A worker process's heartbeat: written by its main process every few seconds
    (``worker.heartbeat``), removed when it stops cleanly. Rows whose ``last_seen`` is recent
    are the live workers (:mod:`cnnlab.store.workers`)."""

    __tablename__ = "workers"

    # "<host>/<pid>" of the worker's main process.
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    queues: Mapped[list[str]] = mapped_column(JSON)
    # The GPUs its pool processes train on (names, one per device); [] for a CPU worker.
    devices: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# -- webhooks ----------------------------------------------------------------------------------
# A user's webhooks, the events that happened to their jobs, searches and models (the outbox,
# written in the transaction of the change it reports), and one delivery per event and webhook
# subscribed to it, with each of its attempts (cnnlab.webhooks delivers them).

WEBHOOK_URL_LENGTH = 2048
WEBHOOK_EVENT_TYPE_LENGTH = 32


class Webhook(Base):
    """Where to POST a user's events, and which types. ``secret`` signs every request; it is
    stored encrypted (:mod:`cnnlab.webhooks.secret_box`) and shown to the user once, at creation
    or rotation."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(WEBHOOK_URL_LENGTH))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_webhooks_owner_created", "owner_id", "created_at", "id"),)


class WebhookEvent(Base):
    """One event of the outbox: its type and the job, search or model as the API shows it."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(WEBHOOK_EVENT_TYPE_LENGTH))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookDelivery(Base):
    """One event for one webhook: pending while ``next_attempt_at`` is set, then delivered
    (``delivered_at``) or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is due (None: delivered or given up); while an attempt is in flight, the time
    # after which another dispatcher may take it over (the attempt's process died).
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    given_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("event_id", "webhook_id"),
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
    )


class WebhookAttempt(Base):
    """One POST of a delivery: when, the receiver's status code or the error, the next retry."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None]


# -- uploaded datasets -------------------------------------------------------------------------
# A user's named datasets, each a series of immutable versions (one per upload), and the bytes
# they are made of: content-addressed blobs (the sha256 of the bytes) in chunks, so a worker on a
# machine with no shared filesystem reads them, and the same bytes uploaded twice are stored once.

DATASET_NAME_PATTERN = MODEL_NAME_PATTERN
DATASET_NAME_LENGTH = MODEL_NAME_LENGTH
CHECKSUM_LENGTH = 64  # sha256, hex


class Dataset(Base):
    """One owner's dataset name. ``last_version`` is the highest version number ever given:
    numbers are never reused, so ``NAME@3`` always means the same images."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(DATASET_NAME_LENGTH))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("owner_id", "name"),)


class DatasetVersion(Base):
    """One upload: the archive (``checksum``), what was asked of the ingest (``options``), and,
    once a worker decoded it, what came out (classes, counts, size, channels, mean/std, report)
    and the decoded tensors (``decoded_checksum``, a blob). Ingest holds a lease like a job."""

    __tablename__ = "dataset_versions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[DatasetStatus] = mapped_column(
        _str_enum(DatasetStatus, "dataset_status"), default=DatasetStatus.ingesting
    )
    checksum: Mapped[str] = mapped_column(String(CHECKSUM_LENGTH), index=True)
    archive_bytes: Mapped[int] = mapped_column(BigInteger)
    # {"image_size", "resize", "test_size", "seed"} as asked at upload.
    options: Mapped[dict[str, Any]]
    image_size: Mapped[int | None] = mapped_column(Integer)
    resize: Mapped[str] = mapped_column(String(16))
    channels: Mapped[int | None] = mapped_column(Integer)
    classes: Mapped[list[str] | None] = mapped_column(JSON)
    # {"train": n, "val": n, "test": n} and per class in ``report``.
    counts: Mapped[dict[str, Any] | None]
    mean: Mapped[list[float] | None] = mapped_column(JSON)
    std: Mapped[list[float] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    decoded_checksum: Mapped[str | None] = mapped_column(String(CHECKSUM_LENGTH), index=True)
    decoded_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # A PNG grid of a few images per class, drawn by the worker that decoded it (a blob).
    samples_checksum: Mapped[str | None] = mapped_column(String(CHECKSUM_LENGTH))
    # {"done": n, "total": n} while a worker decodes it.
    progress: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index("ix_dataset_versions_status_lease", "status", "lease_expires_at"),
    )


class Blob(Base):
    """Bytes named by their sha256; the data is in :class:`BlobChunk` rows (PostgreSQL's bytea
    holds at most 1 GB, and a chunk at a time keeps memory flat)."""

    __tablename__ = "blobs"

    checksum: Mapped[str] = mapped_column(String(CHECKSUM_LENGTH), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlobChunk(Base):
    __tablename__ = "blob_chunks"

    checksum: Mapped[str] = mapped_column(
        ForeignKey("blobs.checksum", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
