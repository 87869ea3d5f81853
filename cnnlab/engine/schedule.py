"""Learning-rate schedules as closed formulas of the optimiser step, so a resumed run (or a
packed trial) sets exactly the rate an uninterrupted one would."""

from __future__ import annotations

import math

from cnnlab.spec.recipe import ScheduleSpec

# onecycle's peak when warmup_epochs is 0: this fraction of the way through training.
ONECYCLE_PEAK = 0.3


def lr_factor(spec: ScheduleSpec, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The factor of ``optimizer.lr`` for optimiser step ``step`` (0-based, counted over the
    whole training of ``epochs`` × ``steps_per_epoch`` steps)."""
    total = max(1, epochs * steps_per_epoch)
    warmup = spec.warmup_epochs * steps_per_epoch
    if spec.name == "onecycle":
        peak = warmup if warmup > 0 else ONECYCLE_PEAK * total
        if step < peak:
            return (step + 1) / peak
        return max(0.0, (total - step) / (total - peak + 1))
    if step < warmup:
        return (step + 1) / warmup
    t = step - warmup
    if spec.name == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(t / max(total - warmup, 1), 1.0)))
    if spec.name == "step":
        return float(spec.gamma ** (t // (spec.step_epochs * steps_per_epoch)))
    return 1.0
