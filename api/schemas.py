"""What the API reads and writes. Separate from the store's tables on purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cnnlab.spec import TrainSpec
from cnnlab.store.models import Job, JobStatus, Search


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(BaseModel):
    type: str
    message: str
    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    detail: ErrorDetail


class JobRead(_Read):
    id: str
    status: JobStatus
    spec: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    epoch: int = Field(description="the last finished epoch (0 before the first)")
    attempts: int
    best_val_accuracy: float | None
    test_accuracy: float | None = Field(description="set when the job succeeds")
    error: dict[str, Any] | None = Field(description="`type` and `message` when the job failed")
    cancel_requested: bool
    search_id: str | None = Field(description="the search this job is a trial of")
    params: dict[str, Any] | None = Field(description="a trial's grid point")


class JobList(BaseModel):
    items: list[JobRead]
    next: str | None = Field(description="pass as `cursor` for the next page; null at the end")


class MetricRow(_Read):
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images_per_second: float | None = None


class SearchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: TrainSpec = Field(description="the spec every trial starts from")
    grid: dict[str, list[Any]] = Field(
        description="dotted spec path -> values; one trial per combination",
        examples=[{"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}],
    )
    metric: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    mode: Literal["max", "min"] = "max"


class TrialRead(BaseModel):
    job_id: str
    params: dict[str, Any]
    status: JobStatus
    val_accuracy: float | None = Field(description="best validation accuracy so far")
    score: float | None = Field(description="the search's metric, on validation data")


class SearchRead(BaseModel):
    id: str
    status: JobStatus
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    metric: str
    mode: str
    trials: list[TrialRead]
    best_job_id: str | None = Field(description="set once every trial has ended")
    test_accuracy: float | None = Field(description="the best trial's, once every trial ended")
    cancel_requested: bool
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def build(
        cls, search: Search, trials: list[Job], scores: dict[str, float | None]
    ) -> SearchRead:
        best = next((t for t in trials if t.id == search.best_job_id), None)
        return cls(
            id=search.id,
            status=search.status,
            base=search.base,
            grid=search.grid,
            metric=search.metric,
            mode=search.mode,
            trials=[
                TrialRead(
                    job_id=t.id,
                    params=t.params or {},
                    status=t.status,
                    val_accuracy=t.best_val_accuracy,
                    score=scores.get(t.id),
                )
                for t in trials
            ],
            best_job_id=search.best_job_id,
            test_accuracy=best.test_accuracy if best is not None else None,
            cancel_requested=search.cancel_requested,
            created_at=search.created_at,
            finished_at=search.finished_at,
        )


class SearchList(BaseModel):
    items: list[SearchRead]
    next: str | None


class PredictInstances(BaseModel):
    """JSON body of a prediction: pixel values 0-255, H×W (grey) or H×W×C (colour) each."""

    model_config = ConfigDict(extra="forbid")

    instances: list[Any] = Field(min_length=1, examples=[[[[0, 255], [255, 0]]]])


class Prediction(BaseModel):
    label: int
    class_name: str
    probabilities: list[float]


class PredictionResponse(BaseModel):
    predictions: list[Prediction]
    job_id: str
    epoch: int = Field(description="the epoch of the checkpoint that answered")


class DatasetRead(BaseModel):
    name: str
    shape: tuple[int, int, int] = Field(description="channels, height, width")
    class_names: list[str]
    mean: list[float]
    std: list[float]
    train_size: int | None
    test_size: int | None
    available: bool = Field(description="the files are on this server")
    tried: list[str] = Field(description="where this server looked, when unavailable")


class ModelRead(BaseModel):
    name: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
