"""Rows for store and API tests, made the way the services make them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.lifecycle import submit_job
from cnnlab.settings import get_settings
from cnnlab.spec.train import TrainSpec
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Job, JobStatus, User
from cnnlab.store.users import create_token, get_or_create_user
from worker.queue import enqueue_job


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_user(session: Session, name: str | None = None) -> tuple[User, str]:
    """A new user and a live token for them (flushed, not committed)."""
    name = name or unique_name()
    token = create_token(session, name)
    return get_or_create_user(session, name), token


def submit(spec: dict[str, Any], user: str = "alice") -> str:
    """Submit ``spec`` as ``user`` in the settings' database, as the API does (validated,
    committed, then enqueued); the job's id."""
    with session_scope() as session:
        owner = get_or_create_user(session, user)
        job = submit_job(
            session,
            owner.id,
            TrainSpec.model_validate(spec),
            get_settings(),
            enqueue=enqueue_job,
        )
        return job.id


def spec_dict(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"dataset": "mnist", "val_size": 100, "batch_size": 64, "epochs": 2}
    doc.update(overrides)
    return TrainSpec.model_validate(doc).model_dump(mode="json")


def make_job(
    session: Session, owner: User, status: JobStatus = JobStatus.queued, **fields: Any
) -> Job:
    job = Job(owner_id=owner.id, spec=fields.pop("spec", spec_dict()), status=status, **fields)
    session.add(job)
    session.flush()
    return job


def metrics(epoch: int, val_accuracy: float, val_loss: float = 0.5) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "train_loss": 0.6,
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
        "seconds": 1.5,
        "images_per_second": 1000.0,
    }
