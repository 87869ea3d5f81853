"""Grid search expansion: a base spec and value lists over dotted spec paths → validated specs."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from cnnlab.errors import BudgetExceeded, SpecError
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec, field_path
from cnnlab.spec.validate import validate_spec

MAX_GRID_POINTS = 64
MAX_VALUES_PER_AXIS = 16


@dataclass(frozen=True)
class GridPoint:
    params: dict[str, Any]  # dotted path -> value, in the grid's key order
    spec: TrainSpec


def check_path(path: str, prefix: str = "grid") -> None:
    """A dotted path must name a leaf field of the spec (``optimizer.lr``, ``batch_size``).
    Errors name ``<prefix>.<path>``; a random search's ``space`` shares this check."""
    model: type[BaseModel] = TrainSpec
    parts = path.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            raise SpecError(f"{prefix}.{path}", f"{'.'.join(parts[: i + 1])} is not a spec field")
        annotation = field.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i < len(parts) - 1:
            if not is_model:
                raise SpecError(f"{prefix}.{path}", f"{part} has no sub-fields")
            model = annotation  # type: ignore[assignment]
        elif is_model:
            raise SpecError(f"{prefix}.{path}", f"{part} is a group; name one of its fields")


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def _validate(doc: dict[str, Any], params: dict[str, Any], prefix: str) -> TrainSpec:
    try:
        return TrainSpec.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = field_path(err["loc"])
        where = f"grid.{loc}" if loc in params else f"{prefix}.{loc}" if loc else prefix
        raise SpecError(where, err["msg"]) from None


def expand(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[GridPoint]:
    """Every combination of the grid's values applied to ``base``, in a stable order: the first
    key varies slowest, as in ``itertools.product``. Errors name the grid path or base field."""
    if not grid:
        raise SpecError("grid", "give at least one path with a list of values")
    for path, values in grid.items():
        check_path(path)
        if not isinstance(values, list) or not values:
            raise SpecError(f"grid.{path}", "must be a non-empty list of values")
        if len(values) > MAX_VALUES_PER_AXIS:
            raise SpecError(f"grid.{path}", f"at most {MAX_VALUES_PER_AXIS} values per path")
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_GRID_POINTS:
        raise SpecError("grid", f"{size} grid points; at most {MAX_GRID_POINTS}")
    _validate(base, {}, "base")
    points = []
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), combo, strict=True))
        doc = copy.deepcopy(base)
        for path, value in params.items():
            _set(doc, path, value)
        points.append(GridPoint(params, _validate(doc, params, "base")))
    return points


def check_point(point: GridPoint, settings: Settings, prefix: str) -> None:
    """:func:`~cnnlab.spec.validate.validate_spec` of one trial, its error naming
    ``<prefix>.<path>`` (``grid`` or ``space``) when a param of the point is at fault and
    ``base.<field>`` otherwise."""
    try:
        validate_spec(point.spec, settings)
    except SpecError as exc:
        where = prefix if exc.field in point.params else "base"
        raise SpecError(f"{where}.{exc.field}", exc.message.split(": ", 1)[-1]) from None
    except BudgetExceeded as exc:
        where = prefix if exc.field in point.params else "base"
        exc.field = exc.details["field"] = f"{where}.{exc.field}"
        exc.message = f"{where}.{exc.message}"
        raise
