"""What the API reads and writes. Separate from the store's tables on purpose."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cnnlab.lifecycle.views import without_pixels
from cnnlab.search.config import SearchConfig
from cnnlab.spec.train import TrainSpec
from cnnlab.status import SearchStatus
from cnnlab.store.tables import (
    JOB_MAX_TAGS,
    JOB_NAME_LENGTH,
    JOB_NOTES_LENGTH,
    JOB_TAG_PATTERN,
    JobStatus,
)

if TYPE_CHECKING:
    from cnnlab.search.plan import SearchPlan


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
    kind: str = Field(
        default="train", description="`train`, or `evaluate`, `compare`, `batch_predict`"
    )
    name: str | None = Field(default=None, description="the owner's name for it")
    tags: list[str] = Field(default_factory=list, description="the owner's tags, sorted")
    notes: str | None = Field(default=None)
    environment: dict[str, Any] | None = Field(
        default=None,
        description="the receipt, written when a worker starts it: cnnlab, Python, torch, "
        "torchvision, CUDA and cuDNN versions, device, dataset (name, version, checksum), seed, "
        "deterministic",
    )
    result: dict[str, Any] | None = Field(
        default=None,
        description="once it succeeded: per-class precision, recall, F1 and the confusion "
        "matrix with class names (`validation` and `test`), the most confident validation "
        "mistakes (pictures at `mistakes.png`)",
    )

    actions: list[str] = Field(
        default_factory=list,
        description="what the caller may do with it now: `cancel`, `register`, `delete`",
    )
    stopped_early_at: int | None = Field(
        default=None,
        description="the epoch early stopping ended the job at (it succeeded with the best "
        "epoch's weights); null when it ran to its last epoch",
    )

    @field_validator("result", mode="before")
    @classmethod
    def _no_pixels(cls, value: Any) -> Any:
        return without_pixels(value)


class JobSubmit(TrainSpec):
    """A train spec, and optionally the job's ``name``, ``tags`` and ``notes`` (not part of
    the spec: they are the owner's words for the job, editable later)."""

    name: str | None = Field(default=None, max_length=JOB_NAME_LENGTH, examples=["baseline"])
    tags: list[str] = Field(
        default_factory=list,
        max_length=JOB_MAX_TAGS,
        description=f"each matching `{JOB_TAG_PATTERN}`",
        examples=[["baseline", "lr-sweep"]],
    )
    notes: str | None = Field(default=None, max_length=JOB_NOTES_LENGTH)

    def split(self) -> tuple[TrainSpec, dict[str, Any]]:
        """The spec, and the labels."""
        labels = {"name": self.name, "tags": self.tags, "notes": self.notes}
        return TrainSpec.model_validate(self.model_dump(exclude=set(labels))), labels


class JobUpdate(BaseModel):
    """The fields of a job its owner may change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=JOB_NAME_LENGTH)
    tags: list[str] | None = Field(default=None, max_length=JOB_MAX_TAGS)
    notes: str | None = Field(default=None, max_length=JOB_NOTES_LENGTH)


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
    lr: float | None = Field(default=None, description="the learning rate of the epoch's last step")


class SearchCreate(SearchConfig):
    """A search: a ``grid`` of values, or a ``space`` of distributions to sample
    (:class:`~cnnlab.search.config.SearchConfig`), from a ``base`` spec. A bad value is 422
    naming ``grid.<path>``, ``space.<path>``, ``pruner.<field>``, ``num_trials``..."""

    base: TrainSpec = Field(description="the spec every trial starts from")


class TrialRead(BaseModel):
    job_id: str
    index: int | None = Field(default=None, description="the trial's number in its search, from 0")
    params: dict[str, Any]
    status: JobStatus
    epoch: int | None = Field(default=None, description="epochs finished")
    val_accuracy: float | None = Field(description="best validation accuracy so far")
    val_loss: float | None = Field(default=None, description="lowest validation loss so far")
    score: float | None = Field(description="the search's metric, on validation data")
    test_accuracy: float | None = Field(default=None, description="set when the trial succeeds")
    seconds: float | None = Field(default=None, description="training time: its epochs' seconds")
    error_type: str | None = Field(
        default=None, description="why it ended early: `pruned`, `diverged`, `worker_lost`, ..."
    )
    pruned_epoch: int | None = Field(
        default=None, description="the epoch a pruned trial stopped at"
    )
    error_message: str | None = Field(
        default=None,
        description="the server's words for why it ended early, e.g. which pruner stopped it",
    )


class SearchRead(BaseModel):
    id: str
    status: SearchStatus
    base: dict[str, Any]
    grid: dict[str, Any] = Field(description="a grid search's grid; {} for a sampled one")
    space: dict[str, Any] | None = Field(default=None, description="a sampled search's space")
    sampler: str = "grid"
    num_trials: int | None = Field(default=None, description="trials the search runs in all")
    seed: int = 0
    pruner: dict[str, Any] | None = None
    max_concurrent_trials: int | None = None
    metric: str
    mode: str
    paused: bool = Field(default=False, description="asked to start no new trial")
    register_best_as: dict[str, Any] | None = Field(
        default=None, description="the model its best trial is registered as when it ends"
    )
    trials: list[TrialRead] = Field(description="the trials started so far, in trial order")
    best_job_id: str | None = Field(description="set once every trial has ended")
    test_accuracy: float | None = Field(description="the best trial's, once every trial ended")
    cancel_requested: bool
    created_at: datetime
    finished_at: datetime | None
    actions: list[str] = Field(
        default_factory=list,
        description="what the caller may do with it now: `pause` or `resume`, `cancel`, "
        "`retry`, `delete`",
    )

    @property
    def paths(self) -> list[str]:
        """The searched spec paths, in the body's order."""
        return list(self.grid or self.space or {})


class SearchList(BaseModel):
    items: list[SearchRead]
    next: str | None


class SpeedRead(BaseModel):
    """What an estimate's speed is based on."""

    dataset: str
    device: str
    images_per_second: float
    source: Literal["measured", "default"] = Field(
        description="`measured`: the median of this server's recent epochs; `default`: none yet"
    )
    epochs: int = Field(description="recorded epochs the median is of (0 for a default)")
    description: str


class TrialPlanRead(BaseModel):
    index: int
    params: dict[str, Any] | None = Field(
        description="null for a trial drawn later from the scores of earlier ones (TPE)"
    )
    depends_on_scores: bool
    dataset: str
    device: str
    epochs: int = Field(description="the most epochs it runs")
    train_images: int = Field(description="training images per epoch")
    images: int = Field(description="epochs × train_images")
    seconds: float = Field(description="estimated training time at the stated speed")


class SearchPlanRead(BaseModel):
    """What `POST /v1/searches` with the same body would run; nothing is created."""

    sampler: str
    num_trials: int
    metric: str
    mode: str
    pruner: dict[str, Any] | None
    max_concurrent_trials: int = Field(description="trials queued or running at once")
    trials: list[TrialPlanRead]
    max_epochs: int = Field(description="all trials' epochs, none pruned")
    max_images: int = Field(description="all trials' training images (epochs × images)")
    seconds: float = Field(
        description="estimated wall time running the trials one after another (sequentially)"
    )
    sequential: bool = Field(default=True, description="`seconds` assumes one trial at a time")
    basis: list[SpeedRead] = Field(description="the speeds the estimate uses, and their source")
    notes: list[str]

    @classmethod
    def build(cls, plan: SearchPlan) -> SearchPlanRead:
        est = plan.estimate
        return cls(
            sampler=plan.sampler,
            num_trials=plan.num_trials,
            metric=plan.metric,
            mode=plan.mode,
            pruner=plan.pruner,
            max_concurrent_trials=plan.max_concurrent_trials,
            trials=[
                TrialPlanRead(
                    index=t.index,
                    params=t.params,
                    depends_on_scores=t.depends_on_scores,
                    dataset=t.dataset,
                    device=t.device,
                    epochs=t.epochs,
                    train_images=t.train_images,
                    images=t.images,
                    seconds=round(t.seconds, 3),
                )
                for t in est.trials
            ],
            max_epochs=est.max_epochs,
            max_images=est.max_images,
            seconds=round(est.seconds, 3),
            basis=[
                SpeedRead(
                    dataset=s.dataset,
                    device=s.device,
                    images_per_second=round(s.images_per_second, 1),
                    source=s.source,
                    epochs=s.epochs,
                    description=s.describe(),
                )
                for s in est.speeds
            ],
            notes=plan.notes,
        )


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
    kind: Literal["builtin", "uploaded"] = "builtin"
    version: int | None = Field(
        default=None, description="an upload's newest version (the rest: its newest ready one)"
    )
    status: str | None = Field(default=None, description="an upload's newest version's status")
    shape: tuple[int, int, int] | None = Field(description="channels, height, width")
    class_names: list[str]
    mean: list[float]
    std: list[float]
    train_size: int | None
    test_size: int | None
    available: bool = Field(description="the files are on this server")
    tried: list[str] = Field(description="where this server looked, when unavailable")
    reason: str | None = Field(
        default=None, description="why it is unavailable, when its files are there but damaged"
    )


class ArchitectureRead(BaseModel):
    """A model architecture a spec's `model.arch` may name, with its options (the other
    `model.*` fields it takes) and their defaults: what a spec's null option means."""

    name: str
    description: str = ""
    options: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"channels": [16, 32], "batch_norm": False, "dropout": 0.0}],
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description="per dependency (`database`, `broker`): `ok`, or what went wrong"
    )
