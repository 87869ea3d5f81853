"""The training recipe's parts of a train spec: augmentation, learning-rate schedule, early
stopping and warm start. Each default does nothing, so a spec without them trains as before."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_AUGMENT_PIXELS = 16
MAX_ROTATE_DEGREES = 45.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AugmentSpec(_Strict):
    """Random changes to each training batch (never to validation or test data), drawn from
    the job's seed and the epoch, so a rerun sees the same images."""

    crop: int = Field(
        default=0,
        ge=0,
        le=MAX_AUGMENT_PIXELS,
        description="pad by this many pixels (zeros) and crop back at a random offset",
    )
    flip: bool = Field(default=False, description="mirror half the images left to right")
    translate: int = Field(
        default=0,
        ge=0,
        le=MAX_AUGMENT_PIXELS,
        description="shift by up to this many pixels each way (zeros fill in)",
    )
    rotate: float = Field(
        default=0.0, ge=0.0, le=MAX_ROTATE_DEGREES, description="rotate by up to ± degrees"
    )
    jitter: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="colour data only: scale brightness, contrast and saturation by up to ±"
        " this fraction",
    )

    @property
    def active(self) -> bool:
        return bool(self.crop or self.flip or self.translate or self.rotate or self.jitter)


class ScheduleSpec(_Strict):
    """The learning rate over training, a factor of ``optimizer.lr`` set before every step.

    ``constant``: 1; ``cosine``: from 1 down to 0 along half a cosine; ``onecycle``: up
    linearly to 1 at the end of the warm-up (30 % of training when ``warmup_epochs`` is 0),
    then linearly down to 0; ``step``: multiplied by ``gamma`` every ``step_epochs``. Every
    schedule but ``onecycle`` starts with ``warmup_epochs`` of linear warm-up from 0."""

    name: Literal["constant", "cosine", "onecycle", "step"] = "constant"
    warmup_epochs: float = Field(default=0.0, ge=0.0, le=1000.0)
    step_epochs: int = Field(default=10, ge=1, le=1000, description="step: epochs per step")
    gamma: float = Field(default=0.1, gt=0.0, le=1.0, description="step: the factor per step")


class EarlyStoppingSpec(_Strict):
    """Stop once validation accuracy has not beaten its best by more than ``min_delta`` for
    ``patience`` epochs; the job still succeeds, with the best epoch's weights."""

    patience: int | None = Field(default=None, ge=1, le=1000, description="null: off")
    min_delta: float = Field(default=0.0, ge=0.0, le=1.0)


class InitSpec(_Strict):
    """Start from trained weights: a version of one of the caller's registered models
    (``model`` with ``alias`` or ``version``; neither: ``production``, else the newest) or one of
    the caller's jobs (``job_id``, its best checkpoint)."""

    model: str | None = None
    alias: str | None = None
    version: int | None = Field(default=None, ge=1)
    job_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InitSpec:
        if (self.model is None) == (self.job_id is None):
            raise ValueError('name a "model" (with "alias" or "version") or a "job_id"')
        if self.job_id is not None and (self.alias is not None or self.version is not None):
            raise ValueError('"alias" and "version" go with "model", not "job_id"')
        if self.alias is not None and self.version is not None:
            raise ValueError('name an "alias" or a "version", not both')
        return self

    def describe(self) -> str:
        if self.job_id is not None:
            return f"job {self.job_id}"
        which = f"@{self.version}" if self.version else f"@{self.alias}" if self.alias else ""
        return f"model {self.model}{which}"
