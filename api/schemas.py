"""What the API reads and writes. Separate from the store's tables on purpose."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cnnlab.spec.train import TrainSpec
from cnnlab.status import SearchStatus
from cnnlab.store.searches import TrialStats
from cnnlab.store.tables import Job, JobStatus, Search

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
    stopped_early_at: int | None = Field(
        default=None,
        description="the epoch early stopping ended the job at (it succeeded with the best "
        "epoch's weights); null when it ran to its last epoch",
    )


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


class SearchCreate(BaseModel):
    """A search: a ``grid`` of values, or a ``space`` of distributions to sample. Values are
    checked by the search core, so a bad one is 422 naming ``grid.<path>``, ``space.<path>``,
    ``pruner.<field>``, ``num_trials``..."""

    model_config = ConfigDict(extra="forbid")

    base: TrainSpec = Field(description="the spec every trial starts from")
    grid: dict[str, Any] | None = Field(
        default=None,
        description="dotted spec path -> values; one trial per combination",
        examples=[{"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}],
    )
    space: dict[str, Any] | None = Field(
        default=None,
        description='instead of `grid`: dotted spec path -> `{"loguniform": [lo, hi]}`, '
        '`{"uniform": [lo, hi]}`, `{"int": [lo, hi]}` (optionally `"log": true`) or '
        '`{"choice": [...]}`',
        examples=[
            {"optimizer.lr": {"loguniform": [0.001, 0.3]}, "batch_size": {"choice": [256, 512]}}
        ],
    )
    sampler: Literal["grid", "random", "tpe"] | None = Field(
        default=None,
        description="`grid` (default with `grid`), `random` (default with `space`) or `tpe`",
    )
    num_trials: int | None = Field(
        default=None, description="trials of a sampled search (default 10; a grid's: its size)"
    )
    seed: int = Field(default=0, description="the same body and seed draw the same trials")
    pruner: dict[str, Any] | None = Field(
        default=None,
        description='`{"name": "asha", "min_epochs", "reduction_factor"}` or '
        '`{"name": "median", "warmup_epochs"}`; null: every trial runs all its epochs',
    )
    max_concurrent_trials: int | None = Field(
        default=None, description="trials queued or running at once (null: no limit of its own)"
    )
    metric: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    mode: Literal["max", "min"] | None = Field(
        default=None, description="default: `max` for val_accuracy, `min` for val_loss"
    )
    register_best_as: dict[str, Any] | None = Field(
        default=None,
        description='`{"name": MODEL, "alias": ALIAS}` (alias optional): when the search ends '
        "with a best trial, it is registered as the next version of the caller's model MODEL "
        "(see Model registry) and ALIAS moved to it",
        examples=[{"name": "fashion", "alias": "candidate"}],
    )

    def search_kwargs(self) -> dict[str, Any]:
        """The body as the search core's keyword arguments (all but ``base`` and ``grid``)."""
        return {
            "space": self.space,
            "sampler": self.sampler,
            "num_trials": self.num_trials,
            "seed": self.seed,
            "pruner": self.pruner,
            "max_concurrent_trials": self.max_concurrent_trials,
            "metric": self.metric,
            "mode": self.mode,
        }


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

    @classmethod
    def build(
        cls, job: Job, score: float | None, stats: TrialStats | None, metric: str
    ) -> TrialRead:
        error = job.error or {}
        pruned = error.get("epoch") if error.get("type") == "pruned" else None
        val_loss = stats.best_val_loss if stats is not None else None
        if stats is None and metric == "val_loss":
            val_loss = score
        return cls(
            job_id=job.id,
            index=job.trial_index,
            params=job.params or {},
            status=job.status,
            epoch=job.epoch,
            val_accuracy=job.best_val_accuracy,
            val_loss=val_loss,
            score=score,
            test_accuracy=job.test_accuracy,
            seconds=stats.seconds if stats is not None else None,
            error_type=error.get("type"),
            pruned_epoch=pruned if isinstance(pruned, int) else None,
            error_message=error.get("message"),
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

    @property
    def paths(self) -> list[str]:
        """The searched spec paths, in the body's order."""
        return list(self.grid or self.space or {})

    @classmethod
    def build(
        cls,
        search: Search,
        trials: list[Job],
        scores: dict[str, float | None],
        stats: dict[str, TrialStats] | None = None,
    ) -> SearchRead:
        best = next((t for t in trials if t.id == search.best_job_id), None)
        return cls(
            id=search.id,
            status=search.status,
            base=search.base,
            grid=search.grid or {},
            space=search.space,
            sampler=search.sampler or "grid",
            num_trials=search.num_trials,
            seed=search.seed or 0,
            pruner=search.pruner,
            max_concurrent_trials=search.max_concurrent_trials,
            metric=search.metric,
            mode=search.mode,
            paused=bool(search.paused),
            register_best_as=search.register_best_as,
            trials=[
                TrialRead.build(
                    t, scores.get(t.id), None if stats is None else stats.get(t.id), search.metric
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
    shape: tuple[int, int, int] = Field(description="channels, height, width")
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
