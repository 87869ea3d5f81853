"""Uploaded datasets as the API shows them (``/v1/datasets``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cnnlab.status import DatasetStatus


class DatasetVersionRead(BaseModel):
    """One upload of a dataset: what was asked, and once decoded, what it holds."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    version: int
    status: DatasetStatus
    checksum: str = Field(description="sha256 of the archive as uploaded")
    archive_bytes: int
    options: dict[str, Any] = Field(description="image_size, resize, test_size, seed as asked")
    image_size: int | None = Field(description="side of the square images it was brought to")
    resize: str
    channels: int | None = Field(description="1 (every image grey) or 3")
    classes: list[str] | None = Field(description="class names, in label order")
    counts: dict[str, Any] | None = Field(description="images per split: train, val, test")
    mean: list[float] | None
    std: list[float] | None
    report: dict[str, Any] | None = Field(
        description="per class and split counts, skipped files with why, duplicates, imbalance"
    )
    error: dict[str, Any] | None = Field(description="why it failed (`type`, `message`)")
    progress: dict[str, Any] | None = Field(description="`done` and `total` while ingesting")
    created_at: datetime
    finished_at: datetime | None


class DatasetVersions(BaseModel):
    name: str
    kind: Literal["uploaded"] = "uploaded"
    versions: list[DatasetVersionRead] = Field(description="newest first")
