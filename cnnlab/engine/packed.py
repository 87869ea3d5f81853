"""Packed trials: K trials whose specs differ only in SGD settings (lr, momentum, weight decay,
nesterov) and seed, trained side by side as one packed model.

The trials' parameters are stacked along a new first dimension and one forward/backward pass
runs all of them (:func:`torch.func.functional_call` under :func:`torch.func.vmap`, which turns
each convolution into one grouped convolution). Everything else stays per trial: each has its
own ``torch.optim.SGD`` over views of its slice of the stacked tensors (so its update is exactly
the one :func:`cnnlab.engine.training.fit` makes), its own batch order (the one its seed gives
unpacked), its own validation split, metrics, checkpoints, ``on_epoch`` / ``should_stop``, and
its own end: a trial that is pruned, cancelled, finished or diverged leaves the pack and the rest
are stacked again without it.

Packing is an execution detail. A packed trial's per-epoch metrics and weights match its unpacked
run up to float rounding (a grouped convolution sums in another order): within ``1e-5``
relative on CPU for the lab's small runs (``tests/core/test_packed.py``), and its checkpoints
are ordinary single-model checkpoints, which resume packed or unpacked alike.

Both run the one epoch loop of :mod:`cnnlab.engine.loop` (seeding, batches, augmentation, the
learning-rate schedule, divergence checks, early stopping); only the step differs.

What packs (:func:`pack_key`): SGD trials (Adam and AdamW keep per-parameter state that is not
worth packing), equal in everything but ``optimizer.lr/momentum/weight_decay/nesterov`` and
``seed``; with dropout > 0 or ``class_weight`` the seed must be equal too (dropout masks are drawn
once per batch and shared, exactly as each unpacked run draws them; class weights come from the
seed's train split). Augmentation, schedules, label smoothing and early stopping pack (each trial
keeps its own random stream, learning rate and end). A warm start (``init``) or ``freeze``
never packs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from cnnlab.datasets.catalog import DatasetMeta, get_meta
from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.engine.loop import (
    Batch,
    EpochMetrics,
    Lane,
    Normalize,
    Progress,
    Recipe,
    Throttled,
    end_epoch,
    run_epoch,
)
from cnnlab.engine.splits import train_val_indices
from cnnlab.engine.training import (
    STOP_POLL_SECONDS,
    EpochReport,
    FitResult,
    evaluate_best,
    make_optimizer,
    resolve_device,
    run_receipt,
    snapshot,
    start_model,
)
from cnnlab.errors import CnnlabError, Diverged, OutOfMemory
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.packing import pack_key
from cnnlab.spec.train import TrainSpec, check_against_dataset


def pack_groups(specs: Sequence[TrainSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped into packs, in order of first appearance; a spec that never
    packs is a group of its own."""
    groups: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    for i, spec in enumerate(specs):
        key = pack_key(spec)
        if key is None:
            alone.append([i])
        else:
            groups.setdefault(key, []).append(i)
    return sorted([*groups.values(), *alone], key=lambda g: g[0])


def can_pack(specs: Sequence[TrainSpec]) -> bool:
    """Whether all of ``specs`` can train as one pack."""
    keys = {pack_key(s) for s in specs}
    return len(specs) > 0 and None not in keys and len(keys) == 1


@dataclass
class PackedTrial:
    """One trial of a pack: its spec and what :func:`~cnnlab.engine.training.fit` takes for it."""

    spec: TrainSpec
    on_epoch: Callable[[EpochReport], bool | None] | None = None
    should_stop: Callable[[], bool] | None = None
    resume: CheckpointDoc | None = None
    environment: dict[str, Any] | None = None  # its receipt, where the caller built it


@dataclass
class _Member:
    """A trial inside the pack: its module's parameters are views of the pack's stacked ones."""

    index: int
    trial: PackedTrial
    model: nn.Module
    lane: Lane  # its share of the epoch loop (its optimiser among it)
    val: ImageSet
    run: Progress
    error: CnnlabError | None = None
    cancelled: bool = False
    done: bool = False
    params: list[nn.Parameter] = field(default_factory=list)
    environment: dict[str, Any] | None = None  # the run's receipt, kept in its checkpoints

    @property
    def spec(self) -> TrainSpec:
        return self.trial.spec

    def snapshot(self, meta: DatasetMeta, best_only: bool = False) -> CheckpointDoc:
        """The checkpoint :func:`cnnlab.engine.training.fit` would make at this point."""
        return snapshot(
            self.spec,
            meta,
            self.model,
            self.lane.optimizer,
            self.run,
            None,
            best_only,
            self.environment,
        )


class _Pack:
    """The stacked parameters and buffers of the members still training."""

    def __init__(self, members: list[_Member], recipe: Recipe) -> None:
        self.recipe = recipe
        # A stateless copy to call functionally; its own tensors are never used.
        self.base = copy.deepcopy(members[0].model).to("meta").train()
        self.members: list[_Member] = []
        self.params: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.restack(members)

    def restack(self, members: list[_Member]) -> None:
        """Stack ``members``' current tensors afresh and point each member's module and
        optimiser at its slice (the optimiser's state carried over as it is)."""
        self.members = members
        named = [dict(m.model.named_parameters()) for m in members]
        bufs = [dict(m.model.named_buffers()) for m in members]
        with torch.no_grad():
            self.params = {
                n: torch.stack([p[n].detach() for p in named]).requires_grad_() for n in named[0]
            }
            self.buffers = {n: torch.stack([b[n] for b in bufs]) for n in bufs[0]}
        for k, m in enumerate(members):
            for name, stacked in self.params.items():
                _set_tensor(m.model, name, nn.Parameter(stacked.detach()[k]))
            for name, stacked in self.buffers.items():
                _set_tensor(m.model, name, stacked[k])
            state = m.lane.optimizer.state_dict()
            m.lane.optimizer = make_optimizer(m.spec.optimizer, m.model.parameters())
            m.lane.optimizer.load_state_dict(state)
            m.params = list(m.model.parameters())

    def losses(self, x: torch.Tensor, y: torch.Tensor, batched: bool) -> torch.Tensor:
        """Each member's mean training loss on its batch: x, y per member when ``batched``,
        else one batch for all."""
        base, recipe = self.base, self.recipe

        def loss(
            params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor],
            x: torch.Tensor,
            y: torch.Tensor,
        ) -> torch.Tensor:
            return recipe.loss(functional_call(base, (params, buffers), (x,)), y)

        data_dim = 0 if batched else None
        # Dropout packs share one seed: one mask per batch, drawn as each unpacked run draws it.
        randomness = "error" if batched else "same"
        per_member = vmap(loss, in_dims=(0, 0, data_dim, data_dim), randomness=randomness)
        with recipe.autocast(x.device):
            result: torch.Tensor = per_member(self.params, self.buffers, x, y)
        return result

    def step(self, losses: torch.Tensor) -> None:
        for stacked in self.params.values():
            stacked.grad = None
        losses.sum().backward()
        grads = [stacked.grad for stacked in self.params.values()]
        for k, m in enumerate(self.members):
            for p, g in zip(m.params, grads, strict=True):
                assert g is not None
                p.grad = g[k]
            m.lane.optimizer.step()
            m.lane.optimizer.zero_grad(set_to_none=True)


def _set_tensor(module: nn.Module, dotted: str, value: torch.Tensor) -> None:
    *path, leaf = dotted.split(".")
    owner = module.get_submodule(".".join(path)) if path else module
    if isinstance(value, nn.Parameter):
        setattr(owner, leaf, value)
    else:
        owner._buffers[leaf] = value


def fit_packed(
    trials: Sequence[PackedTrial],
    *,
    settings: Settings | None = None,
    evaluate_test: bool = True,
    max_batches: int | None = None,
) -> list[FitResult | CnnlabError]:
    """Train ``trials`` (one pack: :func:`can_pack` of their specs) side by side, each as
    :func:`cnnlab.engine.training.fit` would, with its own callbacks and resume checkpoint.

    Returns, per trial in order, its :class:`FitResult`, or the error that ended it alone
    (:class:`Diverged`); an error that ends the pack (out of memory, a bad checkpoint) is raised.
    Resumed trials must all resume after the same epoch.
    """
    started = time.perf_counter()
    specs = [t.spec for t in trials]
    if not can_pack(specs):
        raise ValueError("these specs cannot train as one pack (see cnnlab.spec.packing.pack_key)")
    starts = {t.resume["epoch"] if t.resume is not None else 0 for t in trials}
    if len(starts) > 1:
        raise ValueError(f"packed trials must resume after the same epoch, not {sorted(starts)}")
    settings = settings or get_settings()
    first = specs[0]
    device = resolve_device(first.device, deterministic=first.deterministic)
    meta = get_meta(first.dataset)
    full = load_split(first.dataset, train=True, settings=settings)
    check_against_dataset(first, len(full))
    full = full.to(device)
    members = [_member(i, t, len(full), full, meta, device) for i, t in enumerate(trials)]
    for m in members:
        m.environment = m.trial.environment or run_receipt(m.spec, device, settings)
    # Equal for every member: a pack with class weights shares one seed, so one train split.
    train_labels = full.labels[members[0].lane.train_idx]
    recipe = Recipe.of(first, Normalize(meta, device), train_labels, meta.num_classes)
    batched = len({m.spec.seed for m in members}) > 1

    try:
        pack = _Pack(members, recipe)
        by_lane = {id(m.lane): m for m in members}

        def step(lanes: list[Lane], batches: list[Batch]) -> torch.Tensor:
            if batched:
                x = torch.stack([b[0] for b in batches])
                y = torch.stack([b[1] for b in batches])
            else:
                x, y = batches[0]
            losses = pack.losses(x, y, batched)
            pack.step(losses)
            return losses

        def on_leave(live: list[Lane]) -> None:
            for m in pack.members:
                if m.lane.done:
                    m.error, m.cancelled, m.done = m.lane.error, m.lane.stopped, True
            _restack(pack, [by_lane[id(lane)] for lane in live])

        for epoch in range(starts.pop() + 1, first.epochs + 1):
            t0 = time.perf_counter()
            pack.base.train()
            lanes = [m.lane for m in pack.members]
            run_epoch(lanes, full, recipe, step, epoch=epoch, max_batches=max_batches,
                      on_leave=on_leave)  # fmt: skip
            seconds = time.perf_counter() - t0
            for m in pack.members:
                _end_epoch(m, epoch, recipe, meta, seconds)
            live = [m for m in pack.members if not m.done]
            if not live:
                break
            _restack(pack, live)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(first.batch_size, str(device)) from exc

    outcomes: list[FitResult | CnnlabError] = []
    test = load_split(first.dataset, train=False, settings=settings) if evaluate_test else None
    for m in members:
        if m.error is not None:
            outcomes.append(m.error)
            continue
        best = m.snapshot(meta, best_only=True)
        test_acc, evaluated = None, None
        if not m.cancelled:
            tested = test.to(device) if test is not None and m.run.epoch > 0 else None
            test_acc, evaluated = evaluate_best(best, m.spec, m.val, tested, device)
        outcomes.append(
            FitResult(
                epochs=[EpochMetrics(**r) for r in m.run.metrics],
                best_val_accuracy=m.run.best_val_accuracy,
                best_epoch=m.run.best_epoch,
                test_accuracy=test_acc,
                seconds=time.perf_counter() - started,
                cancelled=m.cancelled,
                best_checkpoint=best,
                last_checkpoint=m.snapshot(meta),
                stopped_early_at=None if m.cancelled else m.run.stopped_early_at,
                evaluated=evaluated,
            )
        )
    return outcomes


def _member(
    index: int,
    trial: PackedTrial,
    n: int,
    full: ImageSet,
    meta: DatasetMeta,
    device: torch.device,
) -> _Member:
    """A trial's model, optimiser and splits, built (and resumed) as fit builds them."""
    spec = trial.spec
    train_idx, val_idx = train_val_indices(spec, full)
    model, optimizer, run, _ = start_model(spec, meta, device, trial.resume)
    lane = Lane(
        seed=spec.seed,
        base_lr=spec.optimizer.lr,
        train_idx=train_idx.to(device),
        stop=Throttled(trial.should_stop, STOP_POLL_SECONDS),
        optimizer=optimizer,
    )
    return _Member(
        index=index,
        trial=trial,
        model=model,
        lane=lane,
        val=full.subset(val_idx.to(device)),
        run=run,
    )


def _restack(pack: _Pack, live: list[_Member]) -> None:
    if len(live) < len(pack.members):
        if live:
            pack.restack(live)
        else:
            pack.members = []


def _end_epoch(m: _Member, epoch: int, recipe: Recipe, meta: DatasetMeta, seconds: float) -> None:
    """Validate a member after an epoch and report it, as fit does; it may leave the pack."""
    if m.done:
        return
    try:
        metrics, improved = end_epoch(
            m.run, m.model, m.lane, m.val, recipe, epoch=epoch, seconds=seconds
        )
    except Diverged as exc:
        m.error, m.done = exc, True
        return
    on_epoch = m.trial.on_epoch
    if (on_epoch is not None and on_epoch(EpochReport(metrics, m.snapshot(meta), improved))) or (
        m.lane.stop()
    ):
        m.cancelled = epoch < m.spec.epochs
        m.done = True
    elif epoch >= m.spec.epochs or m.run.stopped_early_at is not None:
        m.done = True
