"""What a search could cost before it runs: its trials' epochs and training images, and the
wall time they would take at a stated speed. Pure arithmetic: the caller brings the trials, the
datasets' train split sizes and the speeds (measured on the server, or defaults)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from optuna.distributions import FloatDistribution, IntDistribution

from cnnlab.search.grid import GridPoint
from cnnlab.search.space import SearchSpace
from cnnlab.spec.train import TrainSpec, val_count

# Training images per second assumed when this server has measured none for a dataset and
# device: a small CNN on two CPU cores (CIFAR-10's colour images cost about four times more).
DEFAULT_IMAGES_PER_SECOND = {"mnist": 8000.0, "fashion_mnist": 8000.0, "cifar10": 2000.0}
FALLBACK_IMAGES_PER_SECOND = 2000.0
# A GPU is assumed this much faster than the CPU default.
CUDA_SPEEDUP = 10.0
# Spec paths that change a trial's cost (epochs × training images).
COST_PATHS = ("epochs", "train_size", "val_size")


@dataclass(frozen=True)
class Speed:
    """A training speed, and where it comes from: ``measured`` (the median of the last
    ``epochs`` recorded epochs of this dataset and device here) or ``default``."""

    dataset: str
    device: str
    images_per_second: float
    source: Literal["measured", "default"]
    epochs: int = 0

    def describe(self) -> str:
        if self.source == "measured":
            return (
                f"{self.images_per_second:.0f} images/s on {self.dataset} (device {self.device}): "
                f"the median of the last {self.epochs} epoch(s) recorded on this server"
            )
        return (
            f"{self.images_per_second:.0f} images/s on {self.dataset} (device {self.device}): "
            "a default, as this server has recorded no epoch of this dataset on this device yet"
        )


def default_speed(dataset: str, device: str) -> Speed:
    ips = DEFAULT_IMAGES_PER_SECOND.get(dataset, FALLBACK_IMAGES_PER_SECOND)
    if device == "cuda":
        ips *= CUDA_SPEEDUP
    return Speed(dataset, device, ips, "default")


@dataclass(frozen=True)
class TrialCost:
    """One trial as planned. ``params`` is None for a trial whose params depend on scores not
    known yet (a TPE search's after its random start); its cost is then the most it could be."""

    index: int
    params: dict[str, Any] | None
    dataset: str
    device: str
    epochs: int
    train_images: int  # per epoch
    seconds: float

    @property
    def images(self) -> int:
        return self.epochs * self.train_images

    @property
    def depends_on_scores(self) -> bool:
        return self.params is None


@dataclass(frozen=True)
class Estimate:
    trials: list[TrialCost]
    speeds: list[Speed]  # one per dataset and device the trials use

    @property
    def max_epochs(self) -> int:
        return sum(t.epochs for t in self.trials)

    @property
    def max_images(self) -> int:
        return sum(t.images for t in self.trials)

    @property
    def seconds(self) -> float:
        """All trials' epochs one after another, at the stated speeds."""
        return sum(t.seconds for t in self.trials)


def train_images(spec: TrainSpec, train_split: int) -> int:
    """Training images per epoch: what :func:`cnnlab.spec.train.train_count` says for a valid spec,
    and never more than the split leaves after validation for a bound that is not one."""
    rest = max(0, train_split - val_count(spec, train_split))
    return rest if spec.train_size is None else min(spec.train_size, rest)


def _trial(
    index: int, params: dict[str, Any] | None, spec: TrainSpec, train_split: int, speed: Speed
) -> TrialCost:
    images = train_images(spec, train_split)
    seconds = spec.epochs * images / speed.images_per_second
    return TrialCost(index, params, spec.dataset, spec.device, spec.epochs, images, seconds)


def worst_case(spec: TrainSpec, space: SearchSpace, train_split: int) -> TrainSpec:
    """``spec`` with each cost path of ``space`` (epochs, train_size, val_size) at the value
    that costs the most: the bound on a trial whose draw is not known yet. Not validated: the
    combination may be one the spec refuses, which only makes it a looser bound."""
    for dim in space.dims:
        if dim.path not in COST_PATHS:
            continue
        dist = dim.distribution
        if dim.choices:
            values: list[Any] = list(dim.choices)
        elif isinstance(dist, IntDistribution | FloatDistribution):
            values = [dist.low, dist.high]
        else:  # pragma: no cover - every distribution parse_space makes is one of these
            continue
        candidates = [spec.model_copy(update={dim.path: v}) for v in values]
        spec = max(candidates, key=lambda s: s.epochs * train_images(s, train_split))
    return spec


def estimate(
    points: Sequence[GridPoint],
    *,
    train_splits: Mapping[str, int],
    speeds: Mapping[tuple[str, str], Speed],
    known: int | None = None,
    space: SearchSpace | None = None,
    base: TrainSpec | None = None,
) -> Estimate:
    """The cost of running ``points`` (trials in order). Only the first ``known`` of them (all
    by default) are the trials that will run; the rest stand for draws that depend on scores,
    and cost the most any draw of ``space`` could (from ``base``)."""
    known = len(points) if known is None else known
    trials = []
    for index, point in enumerate(points):
        spec = point.spec
        params: dict[str, Any] | None = dict(point.params)
        if index >= known:
            params = None
            if space is not None and base is not None:
                bound = worst_case(base, space, train_splits[base.dataset])
                spec = max(
                    (bound, spec), key=lambda s: s.epochs * train_images(s, train_splits[s.dataset])
                )
        key = (spec.dataset, spec.device)
        trials.append(_trial(index, params, spec, train_splits[spec.dataset], speeds[key]))
    used = list(dict.fromkeys((t.dataset, t.device) for t in trials))
    return Estimate(trials, [speeds[k] for k in used])
