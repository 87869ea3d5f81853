"""What the model registry's routes read and write (``/v1/models``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Prediction
from cnnlab.store.tables import (
    MODEL_ALIAS_PATTERN,
    MODEL_DESCRIPTION_LENGTH,
    MODEL_NAME_PATTERN,
    CheckpointKind,
)


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ModelVersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="the model's name: lower-case letters, digits, `.`, `_`, `-`; 1-63 long",
        examples=["fashion"],
    )
    job_id: str = Field(description="the job whose checkpoint becomes the new version")
    checkpoint: CheckpointKind = Field(
        CheckpointKind.best,
        description="`best` (by validation accuracy) or `last` (the latest epoch's)",
    )
    description: str = Field("", max_length=MODEL_DESCRIPTION_LENGTH)


class ModelVersionRead(_Read):
    name: str
    version: int = Field(description="1, 2, ... per model; a number is never given twice")
    job_id: str = Field(description="the job it was copied from")
    search_id: str | None = Field(description="the search that job was a trial of")
    checkpoint: CheckpointKind
    epoch: int = Field(description="the epoch of the copied checkpoint")
    dataset: str
    arch: str
    val_accuracy: float | None = Field(description="validation accuracy at that epoch")
    test_accuracy: float | None = Field(
        description="the job's test accuracy, when it succeeded and these are its best weights"
    )
    description: str
    size_bytes: int = Field(description="bytes of the frozen checkpoint")
    created_at: datetime
    aliases: list[str] = Field(description="the aliases that point at this version")
    environment: dict[str, Any] | None = Field(
        default=None, description="the receipt of the job it was copied from"
    )
    signature: dict[str, Any] | None = Field(
        default=None,
        description="`input` (channels, height, width), `preprocessing` (mean, std, resize) "
        "and `class_names`: what predictions and evaluations are checked against",
    )
    init: dict[str, Any] | None = Field(
        default=None,
        description="lineage: what the version's job started from (its spec's `init`); null: "
        "from scratch, or the job was deleted",
    )


class RegisteredModelRead(_Read):
    name: str
    created_at: datetime
    latest_version: int | None = Field(description="the newest version (null: none left)")
    version_count: int
    aliases: dict[str, int] = Field(description="alias → version", examples=[{"production": 3}])
    default_version: int | None = Field(
        description="the version a prediction by name uses: alias `production`'s, else the newest"
    )


class RegisteredModelDetail(RegisteredModelRead):
    versions: list[ModelVersionRead] = Field(description="newest first")


class RegisteredModelList(BaseModel):
    items: list[RegisteredModelRead]
    next: str | None = Field(description="pass as `cursor` for the next page; null at the end")


class AliasUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(
        ge=1, le=2**31 - 1, description="the version the alias points at from now on"
    )


class AliasRead(BaseModel):
    name: str
    alias: str = Field(pattern=MODEL_ALIAS_PATTERN)
    version: int
    previous_version: int | None = Field(description="where it pointed before (null: new)")


class ModelPredictionResponse(BaseModel):
    predictions: list[Prediction]
    name: str
    version: int = Field(description="the version that answered")
    alias: str | None = Field(description="the alias that chose it (null: by number, or newest)")
    job_id: str = Field(description="the job that version was copied from")
    epoch: int = Field(description="the epoch of that version's checkpoint")
