"""Training as plain functions: :func:`train_one_epoch`, :func:`evaluate`, :func:`fit`; and
the :func:`confusion_matrix` of a trained model.

The pixels stay one uint8 tensor on the training device; each batch is sliced from a shuffled
index, normalised there and fed channels-last. No DataLoader, no per-sample PIL work.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.datasets.catalog import DatasetMeta, get_meta
from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.engine import checkpoints as ckpt_mod
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.engine.environment import receipt
from cnnlab.engine.splits import make_splits
from cnnlab.errors import CheckpointError, CnnlabError, Diverged, OutOfMemory
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import OptimizerSpec, TrainSpec

EVAL_BATCH_SIZE = 2048
STOP_POLL_SECONDS = 0.5


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochReport:
    """What :func:`fit` hands its ``on_epoch`` callback after each epoch."""

    metrics: EpochMetrics
    checkpoint: CheckpointDoc  # resumable state after this epoch
    improved: bool  # best validation accuracy so far: the checkpoint's weights are the new best


@dataclass
class FitResult:
    epochs: list[EpochMetrics]
    best_val_accuracy: float
    best_epoch: int
    test_accuracy: float | None
    seconds: float
    cancelled: bool
    best_checkpoint: CheckpointDoc
    last_checkpoint: CheckpointDoc

    def summary(self) -> dict[str, Any]:
        return {
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
            "epochs": len(self.epochs),
            "cancelled": self.cancelled,
        }


class DeviceUnavailable(CnnlabError):
    code = "device_unavailable"
    status_code = 422


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device 'cuda' was requested but no CUDA device is available")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        # Fixed shapes every batch: let cuDNN pick its fastest kernels; TF32 for matmuls.
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return torch.device(requested)


class Normalize:
    """uint8 N×C×H×W → float, standardised per channel, channels-last."""

    def __init__(self, meta: DatasetMeta | dict[str, Any], device: torch.device) -> None:
        mean = meta["mean"] if isinstance(meta, dict) else meta.mean
        std = meta["std"] if isinstance(meta, dict) else meta.std
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
        # x/255 - mean) / std == x * scale + shift, one fused multiply-add per pixel
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -torch.tensor(mean, device=device).view(1, -1, 1, 1) / std_t

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x.contiguous(memory_format=torch.channels_last)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_KEEP_FREED_BYTES = 2**30


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc serve large blocks from its heap and keep freed ones there, for this
    process; returns whether it could (glibc only).

    A training step allocates and frees activations of tens of MB (the lab's CNN, batch 1024:
    51 MB for the first convolution's output). By default glibc maps each block over its mmap
    threshold (32 MB at most) afresh and unmaps it when freed, so every batch page-faults and
    zeroes them again: measured, a third of a CPU epoch spent in the kernel, and a CPU training
    step ~2× slower. Once set, freed memory up to ``_KEEP_FREED_BYTES`` stays with the process
    for the next batch (PyTorch's CPU tuning guide gets the same from jemalloc or tcmalloc).
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        libc = ctypes.CDLL(None)
        return bool(
            libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
        )
    except (AttributeError, OSError, ValueError):  # not glibc, or no confstr name
        return False


def make_optimizer(spec: OptimizerSpec, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    if spec.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=spec.lr,
            momentum=spec.momentum,
            weight_decay=spec.weight_decay,
            nesterov=spec.nesterov,
        )
    cls = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
    return cls(params, lr=spec.lr, weight_decay=spec.weight_decay)


def _epoch_seed(seed: int, epoch: int) -> int:
    # Each epoch's shuffle and dropout depend only on (seed, epoch), so a resumed run replays
    # exactly what an uninterrupted one would have done.
    return (seed * 1_000_003 + epoch) % (2**63)


class _Throttled:
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


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ImageSet,
    normalize: Normalize,
    *,
    batch_size: int,
    epoch: int,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
    max_batches: int | None = None,
) -> tuple[float, int, bool]:
    """One pass over ``data``. Returns (mean loss, images seen, stopped early).

    Raises :class:`Diverged` at the first batch whose loss is not finite.
    """
    model.train()
    device = data.images.device
    epoch_seed = _epoch_seed(seed, epoch)
    torch.manual_seed(epoch_seed)  # dropout
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch_seed))
    perm = perm.to(device)
    n_batches = math.ceil(len(data) / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    # On a GPU, reading each loss would stall the queue: check them a few batches at a time.
    check_every = 1 if device.type == "cpu" else 16
    pending: list[torch.Tensor] = []  # summed losses of batches not yet checked
    total, seen, done, stopped = 0.0, 0, 0, False
    lr = optimizer.param_groups[0]["lr"]

    def flush() -> None:
        nonlocal total
        if not pending:
            return
        values = torch.stack(pending).tolist()
        for i, loss_sum in enumerate(values):
            if not math.isfinite(loss_sum):
                raise Diverged(epoch=epoch, batch=done - len(values) + i + 1, lr=lr)
            total += loss_sum
        pending.clear()

    for b in range(n_batches):
        if should_stop():
            stopped = True
            break
        idx = perm[b * batch_size : (b + 1) * batch_size]
        x, y = normalize(data.images[idx]), data.labels[idx]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pending.append(loss.detach() * len(idx))
        seen += len(idx)
        done = b + 1
        if len(pending) >= check_every:
            flush()
        if progress is not None:
            progress(done, n_batches)
    flush()
    return (total / seen if seen else math.nan), seen, stopped


def _logits(
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
    for logits, y in _logits(model, data, normalize, batch_size):
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = max(len(data), 1)
    return loss.item() / n, correct.item() / n


@torch.inference_mode()
def confusion_matrix(
    model: nn.Module,
    data: ImageSet,
    normalize: Normalize,
    num_classes: int,
    batch_size: int = EVAL_BATCH_SIZE,
) -> torch.Tensor:
    """Counts of (true, predicted) class pairs over ``data``: int64 K×K on the CPU, rows the true
    class, columns the predicted one."""
    k = num_classes
    counts = torch.zeros(k * k, dtype=torch.int64, device=data.images.device)
    for logits, y in _logits(model, data, normalize, batch_size):
        counts += torch.bincount(y * k + logits.argmax(1), minlength=k * k)
    return counts.view(k, k).cpu()


def _check_resume(spec: TrainSpec, ckpt: CheckpointDoc) -> None:
    ckpt_mod.check(ckpt)
    saved = dict(ckpt["spec"])
    wanted = spec.model_dump(mode="json")
    for key in ("epochs", "device"):
        saved.pop(key, None)
        wanted.pop(key, None)
    if saved != wanted:
        changed = sorted(k for k in wanted if wanted[k] != saved.get(k))
        raise CheckpointError(f"cannot resume: the spec differs from the checkpoint's in {changed}")
    if ckpt["epoch"] > spec.epochs:
        raise CheckpointError(f"checkpoint is at epoch {ckpt['epoch']}, past epochs={spec.epochs}")


@dataclass
class _Progress:
    epoch: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, Any] | None = None


def start_model(
    spec: TrainSpec, meta: DatasetMeta, device: torch.device, resume: CheckpointDoc | None
) -> tuple[nn.Module, torch.optim.Optimizer, _Progress]:
    """The spec's model (its seed's initial weights, channels-last on ``device``), its optimiser
    and its progress so far: fresh, or as ``resume`` left them."""
    torch.manual_seed(spec.seed)
    model = ckpt_mod.build_model(ckpt_mod.model_config(spec, meta))
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(spec.optimizer, model.parameters())
    if resume is None:
        return model, optimizer, _Progress()
    _check_resume(spec, resume)
    model.load_state_dict(resume["model_state"])
    optimizer.load_state_dict(resume["optimizer_state"])
    run = _Progress(
        epoch=resume["epoch"],
        metrics=list(resume["metrics"]),
        best_val_accuracy=resume["best_val_accuracy"],
        best_epoch=resume["best_epoch"],
        best_state=resume["best_model_state"],
    )
    return model, optimizer, run


def fit(
    spec: TrainSpec,
    *,
    settings: Settings | None = None,
    on_epoch: Callable[[EpochReport], bool | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: CheckpointDoc | None = None,
    progress: Callable[[int, int], None] | None = None,
    evaluate_test: bool = True,
    max_batches: int | None = None,
) -> FitResult:
    """Train ``spec`` to its last epoch (or until stopped), validating after every epoch.

    ``on_epoch`` may return True to stop; ``should_stop`` is polled between batches (at most every
    half second) for cancellation. The test split is evaluated once, on the weights of the epoch
    with the best validation accuracy. ``max_batches`` caps batches per epoch (quick checks).
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    device = resolve_device(spec.device)
    if device.type == "cpu":
        keep_freed_memory()
    meta = get_meta(spec.dataset)
    splits = make_splits(spec, settings)
    train, val = splits.train.to(device), splits.val.to(device)
    normalize = Normalize(meta, device)

    model, optimizer, run = start_model(spec, meta, device, resume)
    stop_requested = _Throttled(should_stop, STOP_POLL_SECONDS)
    environment = run_receipt(spec, device, settings)

    def snapshot(best_only: bool = False) -> CheckpointDoc:
        best = run.best_state if run.best_state is not None else ckpt_mod.cpu_state(model)
        return ckpt_mod.make(
            spec=spec,
            meta=meta,
            epoch=run.best_epoch if best_only else run.epoch,
            model_state=best if best_only else ckpt_mod.cpu_state(model),
            optimizer_state=None if best_only else ckpt_mod.cpu_state(optimizer),
            best_model_state=None if best_only else best,
            metrics=run.metrics,
            best_val_accuracy=run.best_val_accuracy,
            best_epoch=run.best_epoch,
            environment=environment,
        )

    cancelled = False
    try:
        for epoch in range(run.epoch + 1, spec.epochs + 1):
            t0 = time.perf_counter()
            train_loss, seen, stopped = train_one_epoch(
                model, optimizer, train, normalize,
                batch_size=spec.batch_size, epoch=epoch, seed=spec.seed,
                should_stop=stop_requested, progress=progress, max_batches=max_batches,
            )  # fmt: skip
            if stopped:
                cancelled = True
                break
            val_loss, val_acc = evaluate(model, val, normalize)
            if not math.isfinite(val_loss):
                # The last batch's step blew the weights up after its own loss was checked.
                raise Diverged(
                    epoch=epoch, batch=math.ceil(seen / spec.batch_size), lr=spec.optimizer.lr
                )
            seconds = time.perf_counter() - t0
            metrics = EpochMetrics(epoch, train_loss, val_loss, val_acc, seconds, seen / seconds)
            run.epoch = epoch
            run.metrics.append(metrics.to_dict())
            improved = val_acc > run.best_val_accuracy
            if improved:
                run.best_val_accuracy, run.best_epoch = val_acc, epoch
                run.best_state = ckpt_mod.cpu_state(model)
            report = EpochReport(metrics, snapshot(), improved)
            if on_epoch is not None and on_epoch(report):
                cancelled = epoch < spec.epochs
                break
            if stop_requested():
                cancelled = epoch < spec.epochs
                break
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(spec.batch_size, str(device)) from exc

    best = snapshot(best_only=True)
    test_acc = None
    if evaluate_test and not cancelled and run.epoch > 0:
        test_acc = accuracy_on_test(best, settings=settings, device=device)
    return FitResult(
        epochs=[EpochMetrics(**m) for m in run.metrics],
        best_val_accuracy=run.best_val_accuracy,
        best_epoch=run.best_epoch,
        test_accuracy=test_acc,
        seconds=time.perf_counter() - started,
        cancelled=cancelled,
        best_checkpoint=best,
        last_checkpoint=snapshot(),
    )


def run_receipt(spec: TrainSpec, device: torch.device, settings: Settings) -> dict[str, Any]:
    """The receipt of training ``spec`` on ``device`` (:mod:`cnnlab.engine.environment`)."""

    return receipt(
        device=device,
        dataset=spec.dataset,
        seed=spec.seed,
        deterministic=bool(getattr(spec, "deterministic", False)),
        settings=settings,
    )


def _on_test(
    ckpt: CheckpointDoc, settings: Settings | None, device: torch.device | str
) -> tuple[nn.Module, ImageSet, Normalize]:
    """A checkpoint's model and its dataset's test split, on ``device``."""
    device = torch.device(device)
    test = load_split(ckpt["dataset"]["name"], train=False, settings=settings).to(device)
    model = ckpt_mod.load_model(ckpt, device).to(memory_format=torch.channels_last)
    return model, test, Normalize(ckpt["dataset"], device)


def accuracy_on_test(
    ckpt: CheckpointDoc, *, settings: Settings | None = None, device: torch.device | str = "cpu"
) -> float:
    """Accuracy of a checkpoint's weights on its dataset's test split."""
    return evaluate(*_on_test(ckpt, settings, device))[1]


def confusion_on_test(
    ckpt: CheckpointDoc, *, settings: Settings | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The :func:`confusion_matrix` of a checkpoint's weights on its dataset's test split."""
    classes = len(ckpt["dataset"]["class_names"])
    return confusion_matrix(*_on_test(ckpt, settings, device), num_classes=classes)
