"""A search body's one field list, all but its ``base`` spec: the API's body, the plan, the
lifecycle, the client and the CLI all take this object, so the fields, their types and their
defaults are written here once. The typed distributions and pruners give OpenAPI a schema for
``space`` and ``pruner`` (the dashboard builds its form from it).

Pydantic checks the shapes; the checks that need the spec or each other (a range inside the
spec's bounds, a grid's size, a pruner with a sampler, …) stay in :mod:`cnnlab.search.body`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cnnlab.errors import SpecError

_STRICT = ConfigDict(extra="forbid", frozen=True)


class LogUniform(BaseModel):
    """Floats whose logarithm is uniform between ``low`` and ``high`` (``low`` > 0)."""

    model_config = _STRICT
    loguniform: tuple[float, float] = Field(description="[low, high]")


class Uniform(BaseModel):
    model_config = _STRICT
    uniform: tuple[float, float] = Field(description="[low, high]")


class IntRange(BaseModel):
    model_config = _STRICT
    int: tuple[builtins.int, builtins.int] = Field(description="[low, high], both included")
    log: bool = Field(default=False, description="uniform in the logarithm (low ≥ 1)")


class Choice(BaseModel):
    model_config = _STRICT
    choice: list[Any] = Field(description="the values, each drawn as often")


Distribution = LogUniform | Uniform | IntRange | Choice


class Asha(BaseModel):
    """Asynchronous successive halving: at epochs ``min_epochs × reduction_factor**k`` (rung k) a
    trial goes on only if it is in the best 1/reduction_factor of the trials that reached rung k."""

    model_config = _STRICT
    name: Literal["asha"] = "asha"
    min_epochs: int = Field(default=1, ge=1, strict=True)
    reduction_factor: int = Field(default=3, ge=2, strict=True)

    def rung_epochs(self, upto: int) -> list[int]:
        epochs, e = [], self.min_epochs
        while e <= upto:
            epochs.append(e)
            e *= self.reduction_factor
        return epochs


class Median(BaseModel):
    """After ``warmup_epochs`` epochs, stop a trial whose best value so far is worse than the
    median of the completed trials at the same epoch, once ``startup_trials`` have completed."""

    model_config = _STRICT
    name: Literal["median"] = "median"
    warmup_epochs: int = Field(default=1, ge=0, strict=True)
    startup_trials: int = Field(default=1, ge=1, strict=True)


Pruner = Annotated[Asha | Median, Field(discriminator="name")]


class RegisterBestAs(BaseModel):
    model_config = _STRICT
    name: str = Field(description="the caller's model the best trial becomes a version of")
    alias: str | None = Field(default=None, description="an alias moved to that version")
    promote_if_better: bool = Field(
        default=False,
        description="with `alias` already set: compare the new version against the alias's "
        "on its dataset first, and move the alias only if McNemar's test says it is better",
    )


class SearchConfig(BaseModel):
    """Every field of a search body but ``base``."""

    model_config = ConfigDict(extra="forbid")

    grid: dict[str, list[Any]] | None = Field(
        default=None,
        description="dotted spec path -> values; one trial per combination",
        examples=[{"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}],
    )
    space: dict[str, Distribution] | None = Field(
        default=None,
        description="instead of `grid`: dotted spec path -> a distribution to sample",
        examples=[
            {"optimizer.lr": {"loguniform": [0.001, 0.3]}, "batch_size": {"choice": [256, 512]}}
        ],
    )
    sampler: Literal["grid", "random", "tpe"] | None = Field(
        default=None,
        description="`grid` (default with `grid`), `random` (default with `space`) or `tpe`",
    )
    num_trials: int | None = Field(
        default=None,
        strict=True,
        description="trials of a sampled search (default 10; a grid's: its size)",
    )
    seed: int = Field(
        default=0,
        ge=0,
        lt=2**31,
        strict=True,
        description="the same body and seed draw the same trials",
    )
    pruner: Pruner | None = Field(default=None, description="null: every trial runs all its epochs")
    max_concurrent_trials: int | None = Field(
        default=None, ge=1, strict=True, description="trials queued or running at once (default 8)"
    )
    metric: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    mode: Literal["max", "min"] | None = Field(
        default=None, description="default: `max` for val_accuracy, `min` for val_loss"
    )
    register_best_as: RegisterBestAs | None = Field(
        default=None,
        description="when the search ends with a best trial, it is registered as the next "
        "version of the caller's model `name` (see Model registry) and `alias` moved to it "
        "(with `promote_if_better`, only if it beats the alias's version)",
        examples=[{"name": "fashion", "alias": "candidate"}],
    )

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SearchConfig:
        """The config of a body (``base`` left out), or the :class:`SpecError` naming the
        field at fault (``pruner.name``, ``space.<path>``, ``max_concurrent_trials``, …)."""
        return _parse(cls, {k: v for k, v in raw.items() if k != "base"})

    def as_json(self) -> dict[str, Any]:
        """The body's fields as JSON, those left out left out (for a client to send)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def space_json(self) -> dict[str, Any] | None:
        if self.space is None:
            return None
        return {
            path: d.model_dump(mode="json", exclude_unset=True) for path, d in self.space.items()
        }

    def pruner_json(self) -> dict[str, Any] | None:
        return None if self.pruner is None else self.pruner.model_dump(exclude_unset=True)

    def winner_json(self) -> dict[str, Any] | None:
        return None if self.register_best_as is None else self.register_best_as.model_dump()


def parse_pruner(raw: Any) -> Asha | Median | None:
    """A search's ``pruner`` as stored (null for none)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("pruner", "must be null or an object with a name")
    return _parse(TypeAdapter(Pruner), raw, prefix="pruner")


def error_field(loc: Sequence[str], kind: str) -> str:
    """The body field a validation error at ``loc`` (of pydantic type ``kind``) names:
    ``space.<path>`` and ``grid.<path>`` without the distribution pydantic tried,
    ``pruner.<field>`` without the union's tag (``pruner.name`` for an unknown pruner)."""
    head = loc[0] if loc else ""
    if head == "pruner":
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            return "pruner.name"
        return ".".join(p for p in loc[:3] if p not in ("asha", "median"))
    if head in ("space", "grid", "register_best_as"):
        return ".".join(loc[:2])
    return head or "body"


NESTED_FIELDS = ("space", "grid", "pruner", "register_best_as")
# A search body's fields whose bad values are ``invalid_spec`` (as the search core has always
# answered them), not a request that is malformed.
SPEC_FIELDS = (*NESTED_FIELDS, "num_trials", "max_concurrent_trials")


def _parse(model: Any, raw: Any, prefix: str = "") -> Any:
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]]
        raise SpecError(error_field(loc, err["type"]), err["msg"]) from None
