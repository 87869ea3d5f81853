"""One entry point from a search body to its trials, whatever the sampler: each trial's params and
validated spec (a :class:`~cnnlab.search.grid.GridPoint`, as a grid search has always produced)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from cnnlab.errors import SpecError
from cnnlab.search.grid import MAX_GRID_POINTS, GridPoint, expand
from cnnlab.search.sampling import Mode, Past, Sampler, draw, plan
from cnnlab.search.space import SearchSpace, build_spec, parse_space, validate_base

SAMPLERS = ("grid", "random", "tpe")
MAX_TRIALS = MAX_GRID_POINTS
DEFAULT_NUM_TRIALS = 10


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise SpecError("seed", "must be an integer from 0 to 2**31 - 1")
    return seed


def _check_num_trials(num_trials: Any) -> int:
    if num_trials is None:
        return DEFAULT_NUM_TRIALS
    if isinstance(num_trials, bool) or not isinstance(num_trials, int):
        raise SpecError("num_trials", "must be an integer")
    if not 1 <= num_trials <= MAX_TRIALS:
        raise SpecError("num_trials", f"must be from 1 to {MAX_TRIALS}")
    return num_trials


def _grid_points(
    base: Mapping[str, Any], grid: Any, space: SearchSpace | None, num_trials: Any
) -> list[GridPoint]:
    if space is not None:
        grid = space.as_grid()
        if grid is None:
            raise SpecError("space", "the grid sampler takes only choice distributions")
    if not isinstance(grid, dict):
        raise SpecError("grid", "must be an object of path → list of values")
    points = expand(dict(base), grid)
    if num_trials is not None and num_trials != len(points):
        raise SpecError(
            "num_trials", f"the grid has {len(points)} points: give {len(points)} or leave it out"
        )
    return points


def trial_points(
    base: Mapping[str, Any],
    *,
    grid: Any = None,
    space: Any = None,
    sampler: Any = None,
    num_trials: Any = None,
    seed: Any = 0,
) -> list[GridPoint]:
    """The trials a search body starts with: every grid point, or the first ``num_trials``
    random/TPE draws (all of a random search; a TPE search's later ones come from
    :func:`next_point` as scores arrive). Raises :class:`SpecError` naming the field at fault."""
    if grid is not None and space is not None:
        raise SpecError("space", "give grid or space, not both")
    if sampler is None:
        sampler = "grid" if grid is not None else "random"
    if sampler not in SAMPLERS:
        raise SpecError("sampler", f"{sampler!r} is not one of {list(SAMPLERS)}")
    seed = _check_seed(seed)
    parsed = None if space is None else parse_space(space, base)
    if sampler == "grid":
        return _grid_points(base, grid, parsed, num_trials)
    if parsed is None:
        raise SpecError("space", f"the {sampler} sampler needs a space")
    count = _check_num_trials(num_trials)
    assert sampler in get_args(Sampler)
    drawn = plan(parsed, sampler=sampler, seed=seed, num_trials=count)
    return [GridPoint(params, build_spec(base, params)) for params in drawn]


def next_point(
    base: Mapping[str, Any],
    space: SearchSpace,
    *,
    sampler: Sampler,
    seed: int,
    index: int,
    num_trials: int,
    mode: Mode,
    history: Sequence[Past],
) -> GridPoint:
    """Trial ``index`` of a running random/TPE search, drawn from the trials recorded so far
    (``space`` from :func:`parse_space` on the stored body). A draw the spec refuses (a
    combination no single range reveals) raises :class:`SpecError` naming ``space.<path>``."""
    validate_base(base)
    params = draw(
        space,
        sampler=sampler,
        seed=seed,
        index=index,
        num_trials=num_trials,
        mode=mode,
        history=history,
    )
    return GridPoint(params, build_spec(base, params))
