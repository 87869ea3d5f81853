"""Drawing trial params for random and TPE searches, reproducibly and without state of our own.

The store stays the one record of truth: every draw rebuilds a throw-away in-memory Optuna study
from the trials the caller passes (params and scores read from the database), then asks a
sampler seeded from the search's seed and the trial's index. So trial ``i`` of a random search is
the same whenever it is drawn, a restarted worker draws what a live one would have, and TPE's
later draws follow the scores recorded so far.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import TrialState, create_trial

from cnnlab.search.space import SearchSpace

Sampler = Literal["random", "tpe"]
Mode = Literal["max", "min"]
TrialOutcome = Literal["complete", "pruned", "running", "failed"]

_STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "running": TrialState.RUNNING,
    "failed": TrialState.FAIL,
}


@dataclass(frozen=True)
class Past:
    """A trial already drawn, as the store records it. ``value`` is the search metric's score of a
    complete trial; ``curve`` the per-epoch metric (TPE ranks pruned trials by it). Running trials
    count too: TPE's constant liar keeps parallel draws apart from them."""

    params: Mapping[str, Any]
    state: TrialOutcome = "complete"
    value: float | None = None
    curve: Sequence[float] = field(default_factory=tuple)


def trial_seed(seed: int, index: int) -> int:
    """A 32-bit seed per (search seed, trial index), well mixed so neighbouring seeds differ."""
    digest = hashlib.sha256(f"cnnlab-search:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def tpe_startup_trials(num_trials: int) -> int:
    """Random draws before TPE models the scores: Optuna's 10 would leave a small search random."""
    return max(2, min(10, num_trials // 4))


def _sampler(kind: Sampler, seed: int, num_trials: int) -> BaseSampler:
    if kind == "random":
        return RandomSampler(seed=seed)
    if kind == "tpe":
        # constant_liar: running trials count as bad ones, so parallel draws spread out.
        return TPESampler(
            seed=seed, n_startup_trials=tpe_startup_trials(num_trials), constant_liar=True
        )
    raise ValueError(f"unknown sampler {kind!r}")


def _frozen(space: SearchSpace, past: Past) -> optuna.trial.FrozenTrial | None:
    params = space.to_optuna(past.params)
    if params is None:  # not of this space (a hand-edited row): it cannot inform a draw
        return None
    curve = {i + 1: float(v) for i, v in enumerate(past.curve)}
    state = _STATES[past.state]
    if state == TrialState.COMPLETE and past.value is None:
        return None
    return create_trial(
        state=state,
        value=past.value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=space.distributions(),
        intermediate_values=curve,
    )


def draw(
    space: SearchSpace,
    *,
    sampler: Sampler,
    seed: int,
    index: int,
    num_trials: int,
    mode: Mode = "max",
    history: Sequence[Past] = (),
) -> dict[str, Any]:
    """The params of trial ``index`` (0-based). Random draws depend only on (seed, index); TPE
    draws also on ``history`` (every trial drawn before this one, with its outcome so far)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per draw
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        sampler=_sampler(sampler, trial_seed(seed, index), num_trials),
    )
    if sampler == "tpe":
        for past in history:
            trial = _frozen(space, past)
            if trial is not None:
                study.add_trial(trial)
    asked = study.ask(space.distributions())
    return space.from_optuna(asked.params)


def plan(
    space: SearchSpace, *, sampler: Sampler, seed: int, num_trials: int
) -> list[dict[str, Any]]:
    """The first ``num_trials`` draws with no scores yet: all of a random search, and what a TPE
    search starts with (its later draws change as scores come in)."""
    drawn: list[dict[str, Any]] = []
    for index in range(num_trials):
        history = [Past(p, state="running") for p in drawn]
        drawn.append(
            draw(
                space,
                sampler=sampler,
                seed=seed,
                index=index,
                num_trials=num_trials,
                history=history,
            )
        )
    return drawn
