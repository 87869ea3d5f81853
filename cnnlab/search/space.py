"""A sampled search's ``space``: dotted spec path → distribution, checked against the spec before
anything is queued (so a bad range is a 422 naming ``space.<path>``, not a failed trial), then
converted to Optuna distributions."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import ValidationError

from cnnlab.errors import SpecError
from cnnlab.search.grid import check_path
from cnnlab.spec.train import TrainSpec, field_path

KINDS = ("loguniform", "uniform", "int", "choice")
MAX_PATHS = 16
MAX_CHOICES = 64


def _key(value: Any) -> str:
    """A choice's identity: JSON, so ``1`` and ``1.0`` and ``true`` stay distinct, lists hash."""
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Dimension:
    path: str
    distribution: BaseDistribution
    # A choice's values. Optuna categories must be scalars, so it sees their indices instead.
    choices: tuple[Any, ...] = ()

    def to_optuna(self, value: Any) -> Any | None:
        """A spec value in Optuna's terms, or None when it lies outside this dimension."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            keys = [_key(c) for c in self.choices]
            return keys.index(_key(value)) if _key(value) in keys else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if isinstance(dist, IntDistribution) and not isinstance(value, int):
            return None
        assert isinstance(dist, IntDistribution | FloatDistribution)
        return value if dist.low <= value <= dist.high else None

    def from_optuna(self, value: Any) -> Any:
        if self.choices:
            return copy.deepcopy(self.choices[value])
        return value


@dataclass(frozen=True)
class SearchSpace:
    dims: tuple[Dimension, ...]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.path: d.distribution for d in self.dims}

    def to_optuna(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Trial params (as the store keeps them) in Optuna's terms; None if any lies outside."""
        out = {}
        for d in self.dims:
            value = d.to_optuna(params.get(d.path))
            if value is None:
                return None
            out[d.path] = value
        return out

    def from_optuna(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {d.path: d.from_optuna(params[d.path]) for d in self.dims}

    def as_grid(self) -> dict[str, list[Any]] | None:
        """The grid a space of only ``choice`` dimensions spans (for ``sampler: grid``)."""
        if not all(d.choices for d in self.dims):
            return None
        return {d.path: list(d.choices) for d in self.dims}


def with_params(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each dotted path set to its value."""
    doc = copy.deepcopy(dict(base))
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return doc


def build_spec(base: Mapping[str, Any], params: Mapping[str, Any]) -> TrainSpec:
    """The validated spec of one trial. The base is assumed valid, so any error is the params':
    it names ``space.<path>`` (the single path, or the one pydantic points at)."""
    try:
        return TrainSpec.model_validate(with_params(base, params))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = field_path(err["loc"])
        path = loc if loc in params else next(iter(params)) if len(params) == 1 else loc
        where = "" if loc == path else f" (at {loc or 'the spec'})"
        raise SpecError(f"space.{path}", f"{err['msg']}{where}") from None


def validate_base(base: Any) -> TrainSpec:
    if not isinstance(base, Mapping):
        raise SpecError("base", "must be a train spec object")
    try:
        return TrainSpec.model_validate(base)
    except ValidationError as exc:
        loc = field_path(exc.errors()[0]["loc"])
        raise SpecError(f"base.{loc}" if loc else "base", exc.errors()[0]["msg"]) from None


def _number(where: str, x: Any, *, integer: bool = False) -> float:
    ok = isinstance(x, int) if integer else isinstance(x, int | float)
    if isinstance(x, bool) or not ok or not math.isfinite(x):
        raise SpecError(where, f"{x!r} is not {'an integer' if integer else 'a finite number'}")
    return float(x) if not integer else int(x)


def _bounds(where: str, kind: str, raw: Any) -> tuple[Any, Any]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise SpecError(where, f"{kind} takes [low, high]")
    integer = kind == "int"
    low, high = (_number(where, x, integer=integer) for x in raw)
    if low >= high:
        raise SpecError(where, f"low {low!r} must be below high {high!r}")
    if kind == "loguniform" and low <= 0:
        raise SpecError(where, f"loguniform needs low > 0, got {low!r}")
    return low, high


def _dimension(path: str, raw: Any) -> Dimension:
    where = f"space.{path}"
    if not isinstance(raw, Mapping):
        raise SpecError(where, f"must be an object with one of {list(KINDS)}")
    kinds = [k for k in raw if k in KINDS]
    extra = sorted(set(raw) - set(KINDS) - {"log"})
    if len(kinds) != 1 or extra:
        raise SpecError(where, f"give exactly one of {list(KINDS)} (got {sorted(raw)})")
    kind = kinds[0]
    log = raw.get("log", False)
    if "log" in raw and (kind != "int" or not isinstance(log, bool)):
        raise SpecError(where, "log is a true/false option of int")
    if kind == "choice":
        values = raw[kind]
        if not isinstance(values, list) or not values:
            raise SpecError(where, "choice takes a non-empty list of values")
        if len(values) > MAX_CHOICES:
            raise SpecError(where, f"at most {MAX_CHOICES} choices")
        if len({_key(v) for v in values}) != len(values):
            raise SpecError(where, "choices must be distinct")
        return Dimension(path, CategoricalDistribution(list(range(len(values)))), tuple(values))
    low, high = _bounds(where, kind, raw[kind])
    if kind == "int":
        if log and low < 1:
            raise SpecError(where, f"int with log needs low ≥ 1, got {low}")
        return Dimension(path, IntDistribution(low, high, log=log))
    return Dimension(path, FloatDistribution(float(low), float(high), log=kind == "loguniform"))


def _ends(dim: Dimension) -> list[Any]:
    """The values that stand for the whole dimension when asking the spec: every choice, or both
    ends (as floats for a continuous range, so an int field refuses it as it would a sample)."""
    dist = dim.distribution
    if dim.choices:
        return list(dim.choices)
    if isinstance(dist, IntDistribution):
        return [dist.low, dist.high]
    assert isinstance(dist, FloatDistribution)
    return [float(dist.low), float(dist.high)]


def parse_space(raw: Any, base: Mapping[str, Any]) -> SearchSpace:
    """Check a ``space`` against the spec and convert it. Raises :class:`SpecError` naming
    ``space.<path>`` (or ``base.<field>`` when the base itself is invalid)."""
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError("space", "give at least one path with a distribution")
    if len(raw) > MAX_PATHS:
        raise SpecError("space", f"at most {MAX_PATHS} paths")
    validate_base(base)
    dims = []
    for path, spec in raw.items():
        if not isinstance(path, str):
            raise SpecError("space", f"{path!r} is not a dotted spec path")
        check_path(path, "space")
        dim = _dimension(path, spec)
        for value in _ends(dim):
            build_spec(base, {path: value})
        dims.append(dim)
    return SearchSpace(tuple(dims))
