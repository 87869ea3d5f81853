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

What packs (:func:`pack_key`): SGD trials (Adam and AdamW keep per-parameter state that is not
worth packing), equal in everything but ``optimizer.lr/momentum/weight_decay/nesterov`` and
``seed``; with dropout > 0 the seed must be equal too (dropout masks are drawn once per batch
and shared, exactly as each unpacked run draws them).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from cnnlab.datasets.catalog import DatasetMeta, get_meta
from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.engine import checkpoints as ckpt_mod
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.engine.splits import train_val_indices
from cnnlab.engine.training import (
    STOP_POLL_SECONDS,
    EpochMetrics,
    EpochReport,
    FitResult,
    Normalize,
    _epoch_seed,
    _Progress,
    _Throttled,
    accuracy_on_test,
    evaluate,
    make_optimizer,
    resolve_device,
    run_receipt,
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


@dataclass
class _Member:
    """A trial inside the pack: its module's parameters are views of the pack's stacked ones."""

    index: int
    trial: PackedTrial
    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_idx: torch.Tensor  # into the dataset's train split, as fit's splits.train
    val: ImageSet
    stop: _Throttled
    run: _Progress
    total: float = 0.0
    seen: int = 0
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
        run = self.run
        best = run.best_state if run.best_state is not None else ckpt_mod.cpu_state(self.model)
        return ckpt_mod.make(
            spec=self.spec,
            meta=meta,
            epoch=run.best_epoch if best_only else run.epoch,
            model_state=best if best_only else ckpt_mod.cpu_state(self.model),
            optimizer_state=None if best_only else ckpt_mod.cpu_state(self.optimizer),
            best_model_state=None if best_only else best,
            metrics=run.metrics,
            best_val_accuracy=run.best_val_accuracy,
            best_epoch=run.best_epoch,
            environment=self.environment,
        )


class _Pack:
    """The stacked parameters and buffers of the members still training."""

    def __init__(self, members: list[_Member]) -> None:
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
            state = m.optimizer.state_dict()
            m.optimizer = make_optimizer(m.spec.optimizer, m.model.parameters())
            m.optimizer.load_state_dict(state)
            m.params = list(m.model.parameters())

    def losses(self, x: torch.Tensor, y: torch.Tensor, batched: bool) -> torch.Tensor:
        """Each member's mean cross-entropy on its batch: x, y per member when ``batched``,
        else one batch for all."""
        base = self.base

        def loss(
            params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor],
            x: torch.Tensor,
            y: torch.Tensor,
        ) -> torch.Tensor:
            return F.cross_entropy(functional_call(base, (params, buffers), (x,)), y)

        data_dim = 0 if batched else None
        # Dropout packs share one seed: one mask per batch, drawn as each unpacked run draws it.
        randomness = "error" if batched else "same"
        per_member = vmap(loss, in_dims=(0, 0, data_dim, data_dim), randomness=randomness)
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
            m.optimizer.step()
            m.optimizer.zero_grad(set_to_none=True)


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
    device = resolve_device(first.device)
    meta = get_meta(first.dataset)
    full = load_split(first.dataset, train=True, settings=settings)
    check_against_dataset(first, len(full))
    full = full.to(device)
    normalize = Normalize(meta, device)
    members = [_member(i, t, len(full), full, meta, device) for i, t in enumerate(trials)]
    for m in members:
        m.environment = run_receipt(m.spec, device, settings)
    batched = len({m.spec.seed for m in members}) > 1

    try:
        pack = _Pack(members)
        for epoch in range(starts.pop() + 1, first.epochs + 1):
            t0 = time.perf_counter()
            _train_epoch(pack, full, normalize, epoch, batched, max_batches)
            seconds = time.perf_counter() - t0
            for m in pack.members:
                if not m.done:
                    _end_epoch(m, epoch, normalize, meta, seconds)
            live = [m for m in pack.members if not m.done]
            if not live:
                break
            if len(live) < len(pack.members):
                pack.restack(live)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(first.batch_size, str(device)) from exc

    outcomes: list[FitResult | CnnlabError] = []
    for m in members:
        if m.error is not None:
            outcomes.append(m.error)
            continue
        best = m.snapshot(meta, best_only=True)
        test_acc = None
        if evaluate_test and not m.cancelled and m.run.epoch > 0:
            test_acc = accuracy_on_test(best, settings=settings, device=device)
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
    model, optimizer, run = start_model(spec, meta, device, trial.resume)
    return _Member(
        index=index,
        trial=trial,
        model=model,
        optimizer=optimizer,
        train_idx=train_idx.to(device),
        val=full.subset(val_idx.to(device)),
        stop=_Throttled(trial.should_stop, STOP_POLL_SECONDS),
        run=run,
    )


def _train_epoch(
    pack: _Pack,
    full: ImageSet,
    normalize: Normalize,
    epoch: int,
    batched: bool,
    max_batches: int | None,
) -> None:
    """One pass of every member over its training data, in the order its own run would take.
    Members that are cancelled or diverge leave the pack at once."""
    members = pack.members
    spec = members[0].spec
    device = full.images.device
    torch.manual_seed(_epoch_seed(spec.seed, epoch))  # dropout (such packs share one seed)
    n = len(members[0].train_idx)
    orders = {}
    for m in members:
        seed = _epoch_seed(m.spec.seed, epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(device)
        orders[m.index] = m.train_idx[perm]
        m.total, m.seen = 0.0, 0
    batch_size = spec.batch_size
    n_batches = math.ceil(n / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    check_every = 1 if device.type == "cpu" else 16
    pending: list[torch.Tensor] = []  # per batch, each member's summed loss, not yet checked
    done = 0

    def flush() -> None:
        """Add up the pending losses per member; a non-finite one ends its member."""
        if not pending:
            return
        values = torch.stack(pending).tolist()
        for k, m in enumerate(pack.members):
            for i, row in enumerate(values):
                if not math.isfinite(row[k]):
                    batch = done - len(values) + i + 1
                    m.error = Diverged(epoch=epoch, batch=batch, lr=m.spec.optimizer.lr)
                    m.done = True
                    break
                m.total += row[k]
        pending.clear()
        _drop_finished(pack)

    for b in range(n_batches):
        stopping = [m for m in pack.members if m.stop()]
        if stopping:
            flush()
            for m in stopping:
                m.cancelled = m.done = True
            _drop_finished(pack)
        if not pack.members:
            break
        idx = torch.stack(
            [orders[m.index][b * batch_size : (b + 1) * batch_size] for m in pack.members]
        )
        size = idx.shape[1]
        if batched:
            k = len(pack.members)
            x = normalize(full.images[idx.flatten()]).unflatten(0, (k, size))
            y = full.labels[idx]
        else:
            x, y = normalize(full.images[idx[0]]), full.labels[idx[0]]
        losses = pack.losses(x, y, batched)
        pack.step(losses)
        pending.append(losses.detach() * size)
        for m in pack.members:
            m.seen += size
        done = b + 1
        if len(pending) >= check_every:
            flush()
    flush()


def _drop_finished(pack: _Pack) -> None:
    live = [m for m in pack.members if not m.done]
    if len(live) < len(pack.members):
        if live:
            pack.restack(live)
        else:
            pack.members = []


def _end_epoch(
    m: _Member, epoch: int, normalize: Normalize, meta: DatasetMeta, seconds: float
) -> None:
    """Validate a member after an epoch and report it, as fit does; it may leave the pack."""
    t0 = time.perf_counter()
    train_loss = m.total / m.seen if m.seen else math.nan
    val_loss, val_acc = evaluate(m.model, m.val, normalize)
    if not math.isfinite(val_loss):
        batch = math.ceil(m.seen / m.spec.batch_size)
        m.error = Diverged(epoch=epoch, batch=batch, lr=m.spec.optimizer.lr)
        m.done = True
        return
    seconds += time.perf_counter() - t0
    metrics = EpochMetrics(epoch, train_loss, val_loss, val_acc, seconds, m.seen / seconds)
    run = m.run
    run.epoch = epoch
    run.metrics.append(metrics.to_dict())
    improved = val_acc > run.best_val_accuracy
    if improved:
        run.best_val_accuracy, run.best_epoch = val_acc, epoch
        run.best_state = ckpt_mod.cpu_state(m.model)
    on_epoch = m.trial.on_epoch
    if (on_epoch is not None and on_epoch(EpochReport(metrics, m.snapshot(meta), improved))) or (
        m.stop()
    ):
        m.cancelled = epoch < m.spec.epochs
        m.done = True
    elif epoch >= m.spec.epochs:
        m.done = True
