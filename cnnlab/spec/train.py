"""The train spec: the body of a job, the file ``cnnlab train`` reads, the base of a grid search.

Field-level rules live on the models; rules that need the dataset's split sizes live in
:func:`check_against_dataset`. Every error names the dotted path of the field at fault.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cnnlab.architectures.registry import architecture_options, list_architectures
from cnnlab.datasets.catalog import DATASETS
from cnnlab.errors import SpecError
from cnnlab.spec.recipe import AugmentSpec, EarlyStoppingSpec, InitSpec, ScheduleSpec

MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_CHANNELS = 1024
MAX_CONV_BLOCKS = 8
MAX_CONVS_PER_BLOCK = 4
# An uploaded dataset: ``NAME`` (its newest ready version) or ``NAME@V``, resolved against the
# submitter's uploads when the job or search is submitted.
UPLOADED_DATASET = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}(@[1-9][0-9]{0,8})?")
MAX_RESIDUAL_BLOCKS = 8


class _Strict(BaseModel):
    # strict: no silent coercion of true → 1 or "3" → 3; an int still passes as a float.
    model_config = ConfigDict(extra="forbid", strict=True)


Channel = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]


class ModelSpec(_Strict):
    """The architecture and its options; an option left null takes the architecture's own
    default (``GET /v1/architectures`` lists each one's options and defaults)."""

    arch: str = "cnn"
    channels: list[Channel] | None = Field(
        default=None, min_length=1, max_length=MAX_CONV_BLOCKS, description="cnn, cnn_deep"
    )
    batch_norm: bool | None = Field(default=None, description="cnn, cnn_deep")
    convs: list[Annotated[int, Field(ge=1, le=MAX_CONVS_PER_BLOCK)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CONV_BLOCKS,
        description="cnn: 3×3 convs per block, one entry per channels entry (null: one each)",
    )
    dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    depth: int | None = Field(
        default=None, ge=1, le=MAX_RESIDUAL_BLOCKS, description="resnet: blocks per stage"
    )
    width: Channel | None = Field(default=None, description="resnet: the first stage's channels")

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, v: str) -> str:
        if v not in list_architectures():
            raise ValueError(f"unknown arch {v!r}; choose from {list_architectures()}")
        return v

    @field_validator("channels", "batch_norm", "convs", "dropout", "depth", "width")
    @classmethod
    def _option_of_arch(cls, v: object, info: ValidationInfo) -> object:
        arch = info.data.get("arch")
        if v is None or arch not in list_architectures():
            return v
        known = architecture_options(arch)
        if info.field_name not in known:
            raise ValueError(f"{arch} has no option {info.field_name!r}; it takes {known}")
        return v

    def options(self) -> dict[str, object]:
        """The options set (not null): the builder's keyword arguments besides the data's."""
        return {k: v for k, v in self.model_dump(exclude={"arch"}).items() if v is not None}


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0.0, le=100.0)
    momentum: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="sgd only (adam and adamw refuse a non-zero one)"
    )
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    nesterov: bool = False

    @field_validator("momentum")
    @classmethod
    def _momentum_is_sgds(cls, v: float, info: ValidationInfo) -> float:
        # Adam's own moment (beta1 = 0.9) plays momentum's part: a silently ignored value would
        # mislead, and a mapping to betas would change what "adam" means. So: refused.
        name = info.data.get("name")
        if v != 0 and name in ("adam", "adamw"):
            raise ValueError(f"momentum applies to sgd only; {name} has its own (betas)")
        return v

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerSpec:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs the sgd optimizer with momentum > 0")
        return self


class TrainSpec(_Strict):
    dataset: str
    train_size: int | None = Field(default=None, ge=1)
    val_size: int | float = Field(default=10000, gt=0)
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    batch_size: int = Field(default=1024, ge=1, le=MAX_BATCH_SIZE)
    epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The training recipe (cnnlab.spec.recipe); each default keeps plain training.
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    class_weight: Literal["balanced"] | None = Field(
        default=None, description="`balanced`: weigh each class's loss by 1 / its train count"
    )
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    init: InitSpec | None = Field(default=None, description="start from these trained weights")
    freeze: Literal["features"] | None = Field(
        default=None, description="`features`: train only the head for the first freeze_epochs"
    )
    freeze_epochs: int = Field(default=0, ge=0, le=MAX_EPOCHS, validate_default=True)
    precision: Literal["auto", "fp32"] = Field(
        default="fp32", description="`auto`: bf16 (or fp16) autocast on CUDA, fp32 on a CPU"
    )
    deterministic: bool = Field(
        default=False,
        description="true: deterministic CUDA kernels (slower); false lets cuDNN pick the fastest",
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS and not UPLOADED_DATASET.fullmatch(v):
            raise ValueError(
                f"unknown dataset {v!r}; choose from {sorted(DATASETS)} or an upload (NAME[@V])"
            )
        return v

    @field_validator("freeze_epochs")
    @classmethod
    def _freeze_needs_epochs(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("freeze") is not None and v == 0:
            raise ValueError("freeze needs freeze_epochs > 0 (the epochs that train only the head)")
        return v

    @field_validator("val_size")
    @classmethod
    def _fraction_below_one(cls, v: int | float) -> int | float:
        if isinstance(v, float) and not v < 1:
            raise ValueError("a fractional val_size must be below 1 (use an integer for a count)")
        return v


def field_path(loc: tuple[int | str, ...]) -> str:
    """The dotted spec path of a validation error's location, without pydantic's union-member
    tags: ``("val_size", "int")`` → ``val_size``; ``("model", "channels", 2)`` →
    ``model.channels.2``; an unknown field is named as given."""
    model: type[BaseModel] | None = TrainSpec
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(str(part))
            continue
        if model is None:  # below a leaf field: a union-member tag such as "int"
            break
        parts.append(part)
        field = model.model_fields.get(part)
        if field is None:  # an unknown field
            break
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return ".".join(parts)


def val_count(spec: TrainSpec, train_split: int) -> int:
    """The validation count, resolving a fractional ``val_size`` against the train split."""
    if isinstance(spec.val_size, float):
        return max(1, round(spec.val_size * train_split))
    return spec.val_size


def train_count(spec: TrainSpec, train_split: int) -> int:
    rest = train_split - val_count(spec, train_split)
    return rest if spec.train_size is None else spec.train_size


def check_against_dataset(spec: TrainSpec, train_split: int) -> None:
    """Rules that need the dataset's train split size. Raises :class:`SpecError`."""
    n_val = val_count(spec, train_split)
    if n_val >= train_split:
        raise SpecError(
            "val_size", f"{n_val} must be below the train split of {spec.dataset} ({train_split})"
        )
    rest = train_split - n_val
    if spec.train_size is not None and spec.train_size > rest:
        raise SpecError(
            "train_size",
            f"{spec.train_size} is more than the {rest} images left after validation",
        )
    n_train = train_count(spec, train_split)
    if spec.batch_size > n_train:
        raise SpecError("batch_size", f"{spec.batch_size} is larger than the {n_train} images")
