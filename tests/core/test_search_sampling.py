from __future__ import annotations

import math
from typing import Any

import pytest

from cnnlab.errors import SpecError
from cnnlab.search.grid import expand
from cnnlab.search.sampling import Mode, Past, TrialOutcome, draw, plan, tpe_startup_trials
from cnnlab.search.space import parse_space
from cnnlab.search.trials import MAX_TRIALS, next_point, trial_points

BASE = {"dataset": "mnist", "epochs": 2}
SPACE = {
    "optimizer.lr": {"loguniform": [1e-4, 1]},
    "optimizer.momentum": {"uniform": [0, 0.9]},
    "batch_size": {"int": [32, 512], "log": True},
    "model.channels": {"choice": [[8], [16, 32], [32, 64]]},
}
LR = parse_space({"optimizer.lr": {"loguniform": [1e-4, 1]}}, BASE)


def _params(sampler: str, seed: int, n: int = 6) -> list[dict[str, Any]]:
    points = trial_points(BASE, space=SPACE, sampler=sampler, num_trials=n, seed=seed)
    return [p.params for p in points]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_seed_draws_the_same_trials(sampler: str) -> None:
    assert _params(sampler, 3) == _params(sampler, 3)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_another_seed_draws_other_trials(sampler: str) -> None:
    first, second = _params(sampler, 3), _params(sampler, 4)
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_trials_of_one_draw_differ_from_each_other() -> None:
    lrs = [p["optimizer.lr"] for p in _params("random", 0, 8)]
    assert len(set(lrs)) == 8


def test_draws_are_of_the_space_and_their_specs_carry_them() -> None:
    points = trial_points(BASE, space=SPACE, sampler="random", num_trials=20, seed=1)
    assert len(points) == 20
    for p in points:
        assert 1e-4 <= p.params["optimizer.lr"] <= 1
        assert 0 <= p.params["optimizer.momentum"] <= 0.9
        assert isinstance(p.params["batch_size"], int) and 32 <= p.params["batch_size"] <= 512
        assert p.params["model.channels"] in ([8], [16, 32], [32, 64])
        assert p.spec.optimizer.lr == p.params["optimizer.lr"]
        assert p.spec.model.channels == p.params["model.channels"]
        assert p.spec.epochs == 2
    assert {tuple(p.params["model.channels"]) for p in points} == {(8,), (16, 32), (32, 64)}


def test_a_random_trial_is_the_same_whenever_it_is_drawn() -> None:
    planned = plan(LR, sampler="random", seed=5, num_trials=6)
    history = [Past(p, value=0.5) for p in planned[:4]]
    late = draw(LR, sampler="random", seed=5, index=4, num_trials=6, history=history)
    assert late == planned[4]
    assert draw(LR, sampler="random", seed=5, index=5, num_trials=6) == planned[5]


def _scored(seed: int, n: int, best_lr: float) -> list[Past]:
    """Trials scored by how close their lr is to ``best_lr`` (on a log scale)."""
    drawn = plan(LR, sampler="random", seed=seed, num_trials=n)
    return [Past(p, value=-abs(math.log10(p["optimizer.lr"] / best_lr))) for p in drawn]


def _tpe(history: list[Past], index: int, mode: Mode = "max") -> dict[str, Any]:
    return draw(LR, sampler="tpe", seed=0, index=index, num_trials=32, mode=mode, history=history)


def test_tpe_draws_follow_the_history() -> None:
    good_small, good_large = _scored(7, 16, 1e-3), _scored(7, 16, 0.3)
    assert _tpe(good_small, 16) != _tpe(good_large, 16)
    assert _tpe(good_small, 16) == _tpe(good_small, 16)


def test_tpe_draws_near_the_best_scores_more_than_random() -> None:
    history = _scored(7, 16, 1e-2)

    def distance(draws: list[dict[str, Any]]) -> float:
        return sum(abs(math.log10(d["optimizer.lr"] / 1e-2)) for d in draws) / len(draws)

    tpe = [_tpe(history, 16 + i) for i in range(8)]
    rnd = [draw(LR, sampler="random", seed=0, index=16 + i, num_trials=32) for i in range(8)]
    assert distance(tpe) < distance(rnd) / 2


def test_tpe_reads_the_mode() -> None:
    history = _scored(7, 16, 1e-2)
    assert _tpe(history, 16, "max") != _tpe(history, 16, "min")


@pytest.mark.parametrize(
    ("state", "counts"), [("running", True), ("pruned", True), ("failed", False)]
)
def test_tpe_counts_running_and_pruned_trials_not_failed_ones(
    state: TrialOutcome, counts: bool
) -> None:
    history = _scored(7, 12, 1e-2)
    near_best = [
        Past({"optimizer.lr": 0.01 * (1 + i / 10)}, state=state, curve=[0.1]) for i in range(5)
    ]
    assert (_tpe(history + near_best, 12) != _tpe(history, 12)) is counts


def test_tpe_skips_trials_it_cannot_read() -> None:
    history = _scored(7, 12, 1e-2)
    unreadable = [
        Past({"optimizer.lr": 7.0}, value=1.0),  # outside the space
        Past({"batch_size": 64}, value=1.0),  # another space's params
        Past({"optimizer.lr": 0.05}, state="complete"),  # complete without a score
    ]
    assert _tpe(history + unreadable, 12) == _tpe(history, 12)


def test_small_tpe_searches_leave_the_random_start_early() -> None:
    assert tpe_startup_trials(8) == 2
    assert tpe_startup_trials(64) == 10


def test_a_space_of_choices_runs_as_a_grid() -> None:
    space = {"optimizer.lr": {"choice": [0.01, 0.1]}, "batch_size": {"choice": [256, 512]}}
    points = trial_points(BASE, space=space, sampler="grid")
    grid: dict[str, list[Any]] = {"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}
    assert [p.params for p in points] == [p.params for p in expand(BASE, grid)]
    assert [p.params for p in trial_points(BASE, grid=grid)] == [p.params for p in points]


def test_a_tpe_plan_is_what_next_point_draws_with_no_scores() -> None:
    points = trial_points(BASE, space=SPACE, sampler="tpe", num_trials=3, seed=2)
    space = parse_space(SPACE, BASE)
    history = [Past(p.params, state="running") for p in points[:2]]
    nxt = next_point(
        BASE, space, sampler="tpe", seed=2, index=2, num_trials=3, mode="max", history=history
    )
    assert nxt.params == points[2].params
    assert nxt.spec == points[2].spec


def test_a_draw_the_spec_refuses_as_a_whole_names_the_space() -> None:
    base = {"dataset": "mnist", "optimizer": {"momentum": 0.9}}
    space = {"optimizer.name": {"choice": ["adam"]}, "optimizer.nesterov": {"choice": [True]}}
    with pytest.raises(SpecError) as info:
        trial_points(base, space=space, sampler="random", num_trials=1)
    assert info.value.field.startswith("space.optimizer")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"space": SPACE, "sampler": "bayes"}, "sampler"),
        ({"space": SPACE, "sampler": "random", "num_trials": 0}, "num_trials"),
        ({"space": SPACE, "sampler": "random", "num_trials": MAX_TRIALS + 1}, "num_trials"),
        ({"space": SPACE, "sampler": "tpe", "num_trials": True}, "num_trials"),
        ({"space": SPACE, "sampler": "random", "seed": -1}, "seed"),
        ({"space": SPACE, "sampler": "random", "seed": "1"}, "seed"),
        ({"sampler": "tpe"}, "space"),
        ({"space": SPACE, "sampler": "grid"}, "space"),
        ({"space": SPACE, "grid": {"batch_size": [64]}}, "space"),
        ({"grid": {"batch_size": [64, 128]}, "num_trials": 3}, "num_trials"),
        ({"grid": [["batch_size", [64]]]}, "grid"),
        ({"space": {"optimizer.lr": {"uniform": [0, 1]}}}, "space.optimizer.lr"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        trial_points(BASE, **body)
    assert info.value.field == field


def test_random_is_the_default_sampler_of_a_space() -> None:
    assert trial_points(BASE, space=SPACE, num_trials=2, seed=9) == trial_points(
        BASE, space=SPACE, sampler="random", num_trials=2, seed=9
    )
