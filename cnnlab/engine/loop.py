"""The epoch loop that one trial (:func:`cnnlab.engine.training.fit`) and a pack of trials
(:func:`cnnlab.engine.packed.fit_packed`) both run.

A *lane* is one model being trained: its seed (its batch order and augmentation), its training
indices, its optimiser and its stop poll. :func:`run_epoch` takes each lane once over its data, in
batches, and leaves the forward and backward pass to a ``step`` function (one model, or a pack of
them under ``vmap``). Everything else is written once here: seeding by ``(seed, epoch)``,
``max_batches``, augmentation, the learning-rate schedule, the divergence check (every batch on a
CPU, every 16 on a GPU), stops between batches; and after the epoch, :func:`end_epoch`'s
validation, best weights and early stopping.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.datasets.loading import ImageSet
from cnnlab.engine import augment as augment_mod
from cnnlab.engine import checkpoints as ckpt_mod
from cnnlab.engine.schedule import lr_factor
from cnnlab.errors import Diverged
from cnnlab.spec.recipe import EarlyStoppingSpec
from cnnlab.spec.train import TrainSpec

EVAL_BATCH_SIZE = 2048


def epoch_seed(seed: int, epoch: int) -> int:
    # Each epoch's shuffle, augmentation and dropout depend only on (seed, epoch), so a resumed
    # run replays exactly what an uninterrupted one would have done.
    return (seed * 1_000_003 + epoch) % (2**63)


class Throttled:
    """Calls ``fn`` at most every ``interval`` seconds; remembers a True answer."""

    def __init__(self, fn: Callable[[], bool] | None, interval: float) -> None:
        self.fn, self.interval, self.last, self.hit = fn, interval, -math.inf, False

    def __call__(self) -> bool:
        if self.fn is None or self.hit:
            return self.hit
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.hit = bool(self.fn())
        return self.hit


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images_per_second: float
    lr: float | None = None  # the learning rate of the epoch's last step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """A run's state between epochs, as its checkpoint holds it."""

    epoch: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, Any] | None = None
    stopped_early_at: int | None = None


class Normalize:
    """uint8 N×C×H×W → float, standardised per channel, channels-last."""

    def __init__(self, meta: Any, device: torch.device) -> None:
        mean = meta["mean"] if isinstance(meta, dict) else meta.mean
        std = meta["std"] if isinstance(meta, dict) else meta.std
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
        # x/255 - mean) / std == x * scale + shift, one fused multiply-add per pixel
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, device=device).view(1, -1, 1, 1) / std_t

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x.contiguous(memory_format=torch.channels_last)


@dataclass
class Recipe:
    """What every lane of a loop shares: the spec's training settings, resolved on the device."""

    spec: TrainSpec
    normalize: Normalize
    class_weight: torch.Tensor | None = None
    amp_dtype: torch.dtype | None = None  # autocast's dtype; None: fp32

    @classmethod
    def of(
        cls, spec: TrainSpec, normalize: Normalize, train_labels: torch.Tensor, classes: int
    ) -> Recipe:
        device = train_labels.device
        weight = None
        if spec.class_weight == "balanced":
            counts = torch.bincount(train_labels, minlength=classes).float()
            # sklearn's "balanced": n / (classes × count); a class absent from train weighs 0.
            weight = torch.where(counts > 0, len(train_labels) / (classes * counts), 0.0)
        amp = None
        if spec.precision == "auto" and device.type == "cuda":
            amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return cls(spec, normalize, weight, amp)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss (validation reports plain cross-entropy)."""
        return F.cross_entropy(
            logits.float(), y, weight=self.class_weight, label_smoothing=self.spec.label_smoothing
        )

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """The forward pass's context (the backward pass runs outside it, as autocast wants)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)


@dataclass
class Lane:
    """One model's share of an epoch. ``optimizer`` is the one its step function updates (a pack
    replaces it when it restacks)."""

    seed: int
    base_lr: float
    train_idx: torch.Tensor  # into the loop's data
    stop: Callable[[], bool]
    optimizer: torch.optim.Optimizer
    total: float = 0.0
    seen: int = 0
    lr: float = 0.0
    error: Diverged | None = None
    stopped: bool = False

    @property
    def done(self) -> bool:
        return self.stopped or self.error is not None


Batch = tuple[torch.Tensor, torch.Tensor]
# step(lanes, batches): one optimiser step of each live lane on its batch (lanes with equal seeds
# get the very same batch object); returns each lane's mean training loss, shape (lanes,).
Step = Callable[[list[Lane], list[Batch]], torch.Tensor]


def steps_per_epoch(n: int, batch_size: int, max_batches: int | None) -> int:
    n_batches = math.ceil(n / batch_size)
    return n_batches if max_batches is None else min(n_batches, max_batches)


def run_epoch(
    lanes: Sequence[Lane],
    data: ImageSet,
    recipe: Recipe,
    step: Step,
    *,
    epoch: int,
    max_batches: int | None = None,
    on_leave: Callable[[list[Lane]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Take every lane once over its ``train_idx``. A lane whose loss turns non-finite
    (``error``) or whose ``stop`` answers True (``stopped``) leaves at once; ``on_leave`` is told
    the lanes still training."""
    spec = recipe.spec
    device = data.images.device
    torch.manual_seed(epoch_seed(lanes[0].seed, epoch))  # dropout: a pack with dropout shares one
    n = len(lanes[0].train_idx)
    orders, gens = {}, {}
    for lane in lanes:
        seed = epoch_seed(lane.seed, epoch)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(device)
        orders[id(lane)] = lane.train_idx[perm]
        if spec.augment.active and lane.seed not in gens:
            gens[lane.seed] = augment_mod.generator(seed, device)
        lane.total, lane.seen = 0.0, 0
    batch_size = spec.batch_size
    n_batches = steps_per_epoch(n, batch_size, max_batches)
    # On a GPU, reading each loss would stall the queue: check them a few batches at a time.
    check_every = 1 if device.type == "cpu" else 16
    pending: list[torch.Tensor] = []  # per batch, each live lane's summed loss, not yet checked
    live = list(lanes)
    done = 0

    def leave() -> None:
        nonlocal live
        still = [lane for lane in live if not lane.done]
        if len(still) < len(live):
            live = still
            if on_leave is not None:
                on_leave(live)

    def flush() -> None:
        if not pending:
            return
        values = torch.stack(pending).tolist()
        for k, lane in enumerate(live):
            for i, row in enumerate(values):
                if not math.isfinite(row[k]):
                    lane.error = Diverged(epoch=epoch, batch=done - len(values) + i + 1, lr=lane.lr)
                    break
                lane.total += row[k]
        pending.clear()
        leave()

    for b in range(n_batches):
        stopping = [lane for lane in live if lane.stop()]
        if stopping:
            flush()
            for lane in stopping:
                lane.stopped = True
            leave()
        if not live:
            break
        factor = lr_factor(spec.schedule, (epoch - 1) * n_batches + b, n_batches, spec.epochs)
        batches: dict[int, Batch] = {}
        for lane in live:
            lane.lr = lane.base_lr * factor
            for group in lane.optimizer.param_groups:
                group["lr"] = lane.lr
            if lane.seed not in batches:
                idx = orders[id(lane)][b * batch_size : (b + 1) * batch_size]
                x = data.images[idx]
                if lane.seed in gens:
                    x = augment_mod.augment(x, spec.augment, gens[lane.seed])
                batches[lane.seed] = (recipe.normalize(x), data.labels[idx])
        size = len(batches[live[0].seed][1])
        losses = step(live, [batches[lane.seed] for lane in live])
        pending.append(losses.detach().float() * size)
        for lane in live:
            lane.seen += size
        done = b + 1
        if len(pending) >= check_every:
            flush()
        if progress is not None:
            progress(done, n_batches)
    flush()


def batch_logits(
    model: nn.Module, data: ImageSet, normalize: Normalize, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Logits and labels, batch by batch, with the model in evaluation mode. The caller holds
    ``torch.inference_mode``."""
    model.eval()
    for start in range(0, len(data), batch_size):
        x = normalize(data.images[start : start + batch_size])
        yield model(x), data.labels[start : start + batch_size]


@torch.inference_mode()
def evaluate(
    model: nn.Module, data: ImageSet, normalize: Normalize, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy over ``data``."""
    loss = torch.zeros((), device=data.images.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.images.device)
    for logits, y in batch_logits(model, data, normalize, batch_size):
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = max(len(data), 1)
    return loss.item() / n, correct.item() / n


def patience_ran_out(metrics: Sequence[dict[str, Any]], rule: EarlyStoppingSpec) -> bool:
    """Whether ``patience`` epochs have passed since validation accuracy last beat its best so
    far by more than ``min_delta`` (from the metrics rows, so a resumed run agrees)."""
    if rule.patience is None:
        return False
    best, since = -math.inf, 0
    for row in metrics:
        if row["val_accuracy"] > best + rule.min_delta:
            best, since = row["val_accuracy"], 0
        else:
            since += 1
    return since >= rule.patience


def end_epoch(
    run: Progress,
    model: nn.Module,
    lane: Lane,
    val: ImageSet,
    recipe: Recipe,
    *,
    epoch: int,
    seconds: float,
) -> tuple[EpochMetrics, bool]:
    """Validate after an epoch, record it in ``run`` and keep the best weights. Returns the
    metrics and whether they improved on the best; sets ``run.stopped_early_at`` when early
    stopping ends the run here. Raises :class:`Diverged` if the weights blew up."""
    t0 = time.perf_counter()
    train_loss = lane.total / lane.seen if lane.seen else math.nan
    val_loss, val_acc = evaluate(model, val, recipe.normalize)
    if not math.isfinite(val_loss):
        # The last batch's step blew the weights up after its own loss was checked.
        batch = math.ceil(lane.seen / recipe.spec.batch_size)
        raise Diverged(epoch=epoch, batch=batch, lr=lane.lr)
    seconds += time.perf_counter() - t0
    metrics = EpochMetrics(
        epoch, train_loss, val_loss, val_acc, seconds, lane.seen / seconds, lr=lane.lr
    )
    run.epoch = epoch
    run.metrics.append(metrics.to_dict())
    improved = val_acc > run.best_val_accuracy
    if improved:
        run.best_val_accuracy, run.best_epoch = val_acc, epoch
        run.best_state = ckpt_mod.cpu_state(model)
    if epoch < recipe.spec.epochs and patience_ran_out(run.metrics, recipe.spec.early_stopping):
        run.stopped_early_at = epoch
    return metrics, improved
