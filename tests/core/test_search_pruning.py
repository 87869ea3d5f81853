from __future__ import annotations

import math
from typing import Any

import pytest

from cnnlab.errors import SpecError
from cnnlab.search.config import Asha, Median, parse_pruner
from cnnlab.search.pruning import Curve, should_prune

ASHA = Asha(min_epochs=1, reduction_factor=3)  # rungs at epochs 1, 3, 9
MEDIAN = Median(warmup_epochs=1)


def running(*values: float) -> Curve:
    return Curve(values, "running")


def complete(*values: float) -> Curve:
    return Curve(values, "complete")


# --- ASHA -------------------------------------------------------------------------------------


def test_asha_stops_a_trial_outside_the_best_third_of_its_rung() -> None:
    decision = should_prune(ASHA, [0.55], [running(0.5), running(0.6)], "max")
    assert decision is not None
    assert (decision.rule, decision.epoch, decision.value, decision.threshold) == (
        "asha",
        1,
        0.55,
        0.6,
    )
    assert decision.details == {"rung": 0, "competitors": 3, "kept": 1}


def test_asha_keeps_the_best_of_a_rung() -> None:
    assert should_prune(ASHA, [0.7], [running(0.5), running(0.6)], "max") is None


def test_asha_keeps_a_tie_with_the_threshold() -> None:
    assert should_prune(ASHA, [0.6], [running(0.5), running(0.6)], "max") is None


def test_the_first_trial_at_a_rung_goes_on() -> None:
    assert should_prune(ASHA, [0.1], [], "max") is None
    assert should_prune(ASHA, [0.1], [running()], "max") is None


def test_asha_decides_only_at_rung_epochs() -> None:
    others = [running(0.5, 0.6), running(0.6, 0.7)]
    assert should_prune(ASHA, [0.7, 0.0], others, "max") is None


def test_asha_second_rung_compares_the_trials_that_reached_it() -> None:
    others = [complete(0.5, 0.6, 0.8), running(0.6, 0.7, 0.9)]
    decision = should_prune(ASHA, [0.7, 0.7, 0.2], others, "max")
    assert decision is not None
    assert decision.epoch == 3 and decision.threshold == 0.9
    assert decision.details["rung"] == 1


def test_trials_still_running_below_a_rung_do_not_compete_there() -> None:
    me = [0.7, 0.7, 0.5]
    behind = [complete(0.1, 0.1, 0.4), running(0.9, 0.9), running(0.9, 0.9)]
    assert should_prune(ASHA, me, behind, "max") is None
    caught_up = [complete(0.1, 0.1, 0.4), running(0.9, 0.9, 0.9), running(0.9, 0.9, 0.9)]
    assert should_prune(ASHA, me, caught_up, "max") is not None


def test_a_passed_rung_is_not_judged_again() -> None:
    rule = Asha(min_epochs=1, reduction_factor=2)  # rungs at epochs 1, 2, 4
    # Others did better at rung 0 than at rung 1. This trial went on at rung 0 (the others
    # were not there yet); at rung 1 it is judged against rung 1 values only.
    others = [running(0.95, 0.5), running(0.96, 0.6)]
    assert should_prune(rule, [0.1, 0.7], others, "max") is None
    assert should_prune(rule, [0.1, 0.55], others, "max") is not None


def test_asha_in_min_mode_keeps_the_lowest() -> None:
    others = [running(0.3), running(0.4)]
    decision = should_prune(ASHA, [0.9], others, "min")
    assert decision is not None and decision.threshold == 0.3
    assert should_prune(ASHA, [0.2], others, "min") is None
    assert should_prune(ASHA, [0.2], others, "max") is not None


def test_asha_min_epochs_moves_the_first_rung() -> None:
    rule = Asha(min_epochs=2, reduction_factor=3)
    others = [running(0.5, 0.5), running(0.6, 0.6)]
    assert should_prune(rule, [0.1], others, "max") is None
    assert should_prune(rule, [0.1, 0.1], others, "max") is not None


def test_asha_reduction_factor_sets_how_many_go_on() -> None:
    rule = Asha(min_epochs=1, reduction_factor=2)
    others = [running(0.5), running(0.6), running(0.7)]  # four at the rung: two go on
    decision = should_prune(rule, [0.55], others, "max")
    assert decision is not None and decision.threshold == 0.6
    assert decision.details["kept"] == 2
    assert should_prune(rule, [0.6], others, "max") is None


def test_ended_trials_compete_at_the_rungs_they_reached() -> None:
    others = [Curve([0.9], "pruned"), Curve([0.8], "failed")]
    assert should_prune(ASHA, [0.5], others, "max") is not None


def test_a_metric_that_is_not_a_number_is_pruned_at_a_rung() -> None:
    decision = should_prune(ASHA, [math.nan], [running(0.5)], "max")
    assert decision is not None and decision.threshold is None
    assert "not a number" in decision.message()


def test_the_decision_epoch_can_be_an_earlier_one() -> None:
    others = [running(0.5), running(0.6)]
    assert should_prune(ASHA, [0.1, 0.9], others, "max") is None  # epoch 2: no rung
    assert should_prune(ASHA, [0.1, 0.9], others, "max", epoch=1) is not None
    with pytest.raises(ValueError):
        should_prune(ASHA, [0.1], others, "max", epoch=2)


# --- median -----------------------------------------------------------------------------------


def test_median_waits_out_the_warm_up() -> None:
    others = [complete(0.9, 0.9)]
    assert should_prune(MEDIAN, [0.1], others, "max") is None
    assert should_prune(Median(warmup_epochs=0), [0.1], others, "max") is not None


def test_median_stops_a_trial_below_the_median_of_completed_trials() -> None:
    others = [complete(0.5, 0.6, 0.9), complete(0.7, 0.8, 0.9), complete(0.1, 0.7, 0.9)]
    decision = should_prune(MEDIAN, [0.1, 0.2], others, "max")
    assert decision is not None
    assert (decision.rule, decision.epoch, decision.value, decision.threshold) == (
        "median",
        2,
        0.2,
        0.7,
    )
    assert decision.details == {"completed_trials": 3}


def test_median_reads_the_best_value_so_far() -> None:
    others = [complete(0.5, 0.6), complete(0.7, 0.8)]
    assert should_prune(MEDIAN, [0.9, 0.2], others, "max") is None


def test_median_keeps_a_tie() -> None:
    assert should_prune(MEDIAN, [0.1, 0.7], [complete(0.6, 0.7)], "max") is None
    assert should_prune(MEDIAN, [0.1, 0.69], [complete(0.6, 0.7)], "max") is not None


def test_median_counts_only_completed_trials_that_reached_the_epoch() -> None:
    me = [0.1, 0.2]
    assert should_prune(MEDIAN, me, [running(0.9, 0.9)], "max") is None
    assert should_prune(MEDIAN, me, [Curve([0.9, 0.9], "pruned")], "max") is None
    assert should_prune(MEDIAN, me, [complete(0.9)], "max") is None
    assert should_prune(MEDIAN, me, [complete(0.9, 0.9)], "max") is not None


def test_median_in_min_mode_keeps_the_lowest() -> None:
    others = [complete(0.5, 0.4)]
    assert should_prune(MEDIAN, [0.9, 0.8], others, "min") is not None
    assert should_prune(MEDIAN, [0.3, 0.5], others, "min") is None


def test_median_waits_for_its_startup_trials() -> None:
    rule = Median(warmup_epochs=1, startup_trials=2)
    assert should_prune(rule, [0.1, 0.2], [complete(0.9, 0.9)], "max") is None
    two = [complete(0.9, 0.9), complete(0.8, 0.8)]
    assert should_prune(rule, [0.1, 0.2], two, "max") is not None


# --- the decision and the configs -------------------------------------------------------------


def test_no_rule_never_prunes() -> None:
    assert should_prune(None, [0.0], [running(1.0), running(1.0)], "max") is None


def test_the_decision_becomes_the_pruned_error() -> None:
    decision = should_prune(ASHA, [0.55], [running(0.5), running(0.6)], "max")
    assert decision is not None
    error = decision.to_error()
    assert error["type"] == "pruned" and error["rule"] == "asha" and error["epoch"] == 1
    assert error["rung"] == 0 and error["threshold"] == 0.6 and error["value"] == 0.55
    assert "epoch 1" in error["message"] and "0.6" in error["message"]


def test_configs_parse_with_defaults() -> None:
    assert parse_pruner(None) is None
    assert parse_pruner({"name": "asha"}) == Asha(min_epochs=1, reduction_factor=3)
    assert parse_pruner({"name": "asha", "min_epochs": 2, "reduction_factor": 4}) == Asha(
        min_epochs=2, reduction_factor=4
    )
    assert parse_pruner({"name": "median", "warmup_epochs": 0}) == Median(warmup_epochs=0)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("asha", "pruner"),
        ({}, "pruner.name"),
        ({"name": "hyperband"}, "pruner.name"),
        ({"name": "asha", "min_epochs": 0}, "pruner.min_epochs"),
        ({"name": "asha", "min_epochs": 1.5}, "pruner.min_epochs"),
        ({"name": "asha", "reduction_factor": 1}, "pruner.reduction_factor"),
        ({"name": "asha", "reduction_factor": True}, "pruner.reduction_factor"),
        ({"name": "asha", "warmup_epochs": 1}, "pruner.warmup_epochs"),
        ({"name": "median", "warmup_epochs": -1}, "pruner.warmup_epochs"),
        ({"name": "median", "startup_trials": 0}, "pruner.startup_trials"),
        ({"name": "median", "min_epochs": 1}, "pruner.min_epochs"),
    ],
)
def test_bad_pruner_configs_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_pruner(raw)
    assert info.value.field == field
    assert info.value.status_code == 422


def test_median_skips_values_that_are_not_numbers() -> None:
    others = [complete(0.5, 0.5)]
    decision = should_prune(MEDIAN, [math.nan, math.nan], others, "max")
    assert decision is not None and math.isnan(decision.value) and decision.threshold is None
    assert should_prune(MEDIAN, [math.nan, 0.6], others, "max") is None
    decision = should_prune(MEDIAN, [math.nan, 0.4], others, "max")
    assert decision is not None and decision.value == 0.4
