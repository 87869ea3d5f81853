"""Early stopping of search trials, decided at an epoch boundary from metric rows already stored.

Like sampling, nothing is kept between calls: each decision replays the recorded per-epoch
values into a throw-away in-memory Optuna study (one epoch is one step, numbered from 1) and asks
Optuna's own pruner, so the rule is Optuna's and the database stays the one record of truth.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.pruners import BasePruner, MedianPruner, SuccessiveHalvingPruner
from optuna.trial import TrialState

from cnnlab.search.config import Asha, Median

Mode = Literal["max", "min"]
CurveState = Literal["running", "complete", "pruned", "failed"]
_ENDED = {"pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


Rule = Asha | Median


@dataclass(frozen=True)
class Curve:
    """One other trial of the search: its metric per epoch (epochs 1..n) and where it stands."""

    values: Sequence[float]
    state: CurveState = "running"


@dataclass(frozen=True)
class Decision:
    """Why a trial was stopped; :meth:`to_error` is the pruned trial's error."""

    rule: str
    epoch: int
    value: float
    threshold: float | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        if math.isnan(self.value):
            return f"pruned by {self.rule} at epoch {self.epoch}: the metric is not a number"
        return (
            f"pruned by {self.rule} at epoch {self.epoch}: {self.value:g} is worse than "
            f"the threshold {self.threshold:g}"
        )

    def to_error(self) -> dict[str, Any]:
        return {
            "type": "pruned",
            "message": self.message(),
            "rule": self.rule,
            "epoch": self.epoch,
            "value": self.value,
            "threshold": self.threshold,
            **self.details,
        }


def _optuna_pruner(rule: Rule) -> BasePruner:
    if isinstance(rule, Asha):
        return SuccessiveHalvingPruner(
            min_resource=rule.min_epochs, reduction_factor=rule.reduction_factor
        )
    # Optuna's earliest pruning step is n_warmup_steps; ours is the epoch after the warm-up.
    return MedianPruner(n_startup_trials=rule.startup_trials, n_warmup_steps=rule.warmup_epochs + 1)


def _check_steps(rule: Rule, upto: int) -> list[int]:
    """The epochs at which the pruner must be consulted while replaying a curve: ASHA records a
    trial's rung values as it passes them; the median rule needs no memory."""
    return rule.rung_epochs(upto) if isinstance(rule, Asha) else []


def _replay(study: optuna.Study, rule: Rule, values: Sequence[float]) -> optuna.Trial:
    trial = study.ask()
    checks = set(_check_steps(rule, len(values)))
    for epoch, value in enumerate(values, start=1):
        trial.report(float(value), epoch)
        if epoch in checks:
            trial.should_prune()  # records the rung; the verdict was given at the time
    return trial


def _explain(
    rule: Rule, values: Sequence[float], others: Sequence[Curve], mode: Mode, epoch: int
) -> Decision:
    value = float(values[epoch - 1])
    if isinstance(rule, Asha):
        rungs = rule.rung_epochs(epoch)
        rung = len(rungs) - 1
        rival = [float(c.values[epoch - 1]) for c in others if len(c.values) >= epoch]
        rival = [v for v in rival if not math.isnan(v)]
        competing = sorted([*rival, value], reverse=mode == "max")
        keep = max(len(competing) // rule.reduction_factor, 1)
        threshold = None if math.isnan(value) else competing[keep - 1]
        details = {"rung": rung, "competitors": len(competing), "kept": keep}
        return Decision("asha", epoch, value, threshold, details)
    finite = [float(v) for v in values[:epoch] if not math.isnan(v)]
    best = (max(finite) if mode == "max" else min(finite)) if finite else math.nan
    done = [
        float(c.values[epoch - 1])
        for c in others
        if c.state == "complete" and len(c.values) >= epoch
    ]
    done = [v for v in done if not math.isnan(v)]
    threshold = statistics.median(done) if done and not math.isnan(best) else None
    return Decision("median", epoch, float(best), threshold, {"completed_trials": len(done)})


def should_prune(
    rule: Rule | None,
    values: Sequence[float],
    others: Sequence[Curve],
    mode: Mode,
    epoch: int | None = None,
) -> Decision | None:
    """Decide whether a running trial stops after ``epoch`` (default: its last recorded one).

    ``values`` is the trial's search metric per epoch; ``others`` every other trial of the search
    with the values recorded so far (running ones shorter). ``mode`` is the metric's direction.
    Returns None to go on."""
    epoch = len(values) if epoch is None else epoch
    if rule is None or epoch < 1:
        return None
    if epoch > len(values):
        raise ValueError(f"no value recorded for epoch {epoch}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize", pruner=_optuna_pruner(rule)
    )
    for other in others:
        if not other.values:
            continue
        replayed = _replay(study, rule, other.values)
        if other.state == "running":
            continue
        last = float(other.values[-1])
        if other.state == "complete" and not math.isnan(last):
            study.tell(replayed, last)  # the final value is not used: the rules read the curves
        else:
            study.tell(replayed, state=_ENDED.get(other.state, TrialState.FAIL))
    mine = _replay(study, rule, values[: epoch - 1])
    mine.report(float(values[epoch - 1]), epoch)
    with warnings.catch_warnings():  # numpy's "All-NaN slice" as Optuna's median reads NaNs
        warnings.simplefilter("ignore", RuntimeWarning)
        if not mine.should_prune():
            return None
    return _explain(rule, values, others, mode, epoch)
