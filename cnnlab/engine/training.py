"""Training as plain functions: :func:`fit` (over the epoch loop of :mod:`cnnlab.engine.loop`),
:func:`evaluate`; and the :func:`confusion_matrix` of a trained model.

The pixels stay one uint8 tensor on the training device; each batch is sliced from a shuffled
index, augmented and normalised there and fed channels-last. No DataLoader, no per-sample PIL work.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.datasets.catalog import DatasetMeta, get_meta
from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.engine import checkpoints as ckpt_mod
from cnnlab.engine import warm_start
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.engine.environment import receipt
from cnnlab.engine.evaluation_data import LabelledSet
from cnnlab.engine.loop import (
    EVAL_BATCH_SIZE,
    Batch,
    EpochMetrics,
    Lane,
    Normalize,
    Progress,
    Recipe,
    Step,
    Throttled,
    batch_logits,
    end_epoch,
    evaluate,
    run_epoch,
)
from cnnlab.engine.splits import make_splits
from cnnlab.errors import CheckpointError, CnnlabError, OutOfMemory, SpecError
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import OptimizerSpec, TrainSpec

STOP_POLL_SECONDS = 0.5


@dataclass
class EpochReport:
    """What :func:`fit` hands its ``on_epoch`` callback after each epoch."""

    metrics: EpochMetrics
    checkpoint: CheckpointDoc  # resumable state after this epoch
    improved: bool  # best validation accuracy so far: the checkpoint's weights are the new best


@dataclass(frozen=True)
class Evaluated:
    """The images a run's best weights were evaluated on, on the training device: kept so the
    job's per-class report (:func:`cnnlab.engine.evaluation.job_report`) loads nothing again."""

    validation: LabelledSet
    test: LabelledSet | None  # None: the test split was not evaluated


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
    # The epoch early stopping ended training at (None: it ran to the end, or was stopped).
    stopped_early_at: int | None = None
    # What the model started from (``init``), and whether its head was rebuilt.
    warm_start: dict[str, Any] | None = None
    # The sets the best weights were evaluated on (None: the run was stopped).
    evaluated: Evaluated | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
            "epochs": len(self.epochs),
            "cancelled": self.cancelled,
            "stopped_early_at": self.stopped_early_at,
            "warm_start": self.warm_start,
        }


class DeviceUnavailable(CnnlabError):
    code = "device_unavailable"
    status_code = 422


def resolve_device(requested: str, *, deterministic: bool = False) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device 'cuda' was requested but no CUDA device is available")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        # Fixed shapes every batch: let cuDNN pick its fastest kernels (unless the spec wants
        # deterministic ones); TF32 for matmuls. Set for every job, as a worker runs many.
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.set_float32_matmul_precision("high")
    return torch.device(requested)


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
    for logits, y in batch_logits(model, data, normalize, batch_size):
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


def start_model(
    spec: TrainSpec,
    meta: DatasetMeta,
    device: torch.device,
    resume: CheckpointDoc | None,
    init: CheckpointDoc | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer, Progress, dict[str, Any] | None]:
    """The spec's model (its seed's initial weights, or ``init``'s where it has them;
    channels-last on ``device``), its optimiser, its progress so far (fresh, or as ``resume``
    left them) and what it started from (``init``'s source and whether its head was rebuilt)."""
    torch.manual_seed(spec.seed)
    config = ckpt_mod.model_config(spec, meta)
    model = ckpt_mod.build_model(config)
    warm = None
    if spec.init is not None and init is None and resume is None:
        raise SpecError("init", "the weights init names were not given (only the service has them)")
    if init is not None and spec.init is not None:
        source = spec.init.describe()
        warm_start.check_compatible(config, init, source)
        rebuilt = resume is None and warm_start.load_init(model, init, meta.class_names)
        warm = {"from": spec.init.model_dump(exclude_none=True), "head_rebuilt": rebuilt}
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(spec.optimizer, model.parameters())
    if resume is None:
        return model, optimizer, Progress(), warm
    _check_resume(spec, resume)
    model.load_state_dict(resume["model_state"])
    optimizer.load_state_dict(resume["optimizer_state"])
    run = Progress(
        epoch=resume["epoch"],
        metrics=list(resume["metrics"]),
        best_val_accuracy=resume["best_val_accuracy"],
        best_epoch=resume["best_epoch"],
        best_state=resume["best_model_state"],
    )
    return model, optimizer, run, resume.get("warm_start", warm)


def snapshot(
    spec: TrainSpec,
    meta: DatasetMeta,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    run: Progress,
    warm: dict[str, Any] | None,
    best_only: bool = False,
    environment: dict[str, Any] | None = None,
) -> CheckpointDoc:
    """The checkpoint of a run at this point: resumable, or (``best_only``) its best weights."""
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
        warm_start=warm,
        environment=environment,
    )


def single_step(model: nn.Module, recipe: Recipe) -> Step:
    """The epoch loop's step for one model."""

    def step(lanes: list[Lane], batches: list[Batch]) -> torch.Tensor:
        (x, y), optimizer = batches[0], lanes[0].optimizer
        with recipe.autocast(x.device):
            logits = model(x)
        loss = recipe.loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().view(1)

    return step


def fit(
    spec: TrainSpec,
    *,
    settings: Settings | None = None,
    on_epoch: Callable[[EpochReport], bool | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: CheckpointDoc | None = None,
    init: CheckpointDoc | None = None,
    progress: Callable[[int, int], None] | None = None,
    evaluate_test: bool = True,
    max_batches: int | None = None,
    environment: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``spec`` to its last epoch (or until stopped, or stopped early), validating after
    every epoch.

    ``on_epoch`` may return True to stop; ``should_stop`` is polled between batches (at most every
    half second) for cancellation. ``init`` is the checkpoint ``spec.init`` names (the caller
    resolves it). The test split is evaluated once, on the weights of the epoch with the best
    validation accuracy. ``max_batches`` caps batches per epoch (quick checks). ``environment``
    is the run's receipt (:func:`run_receipt`) where the caller built it already.
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    device = resolve_device(spec.device, deterministic=spec.deterministic)
    if device.type == "cpu":
        keep_freed_memory()
    meta = get_meta(spec.dataset)
    splits = make_splits(spec, settings)
    train, val = splits.train.to(device), splits.val.to(device)
    recipe = Recipe.of(spec, Normalize(meta, device), train.labels, meta.num_classes)

    model, optimizer, run, warm = start_model(spec, meta, device, resume, init)
    if environment is None:
        environment = run_receipt(spec, device, settings)
    lane = Lane(
        seed=spec.seed,
        base_lr=spec.optimizer.lr,
        train_idx=torch.arange(len(train), device=device),
        stop=Throttled(should_stop, STOP_POLL_SECONDS),
        optimizer=optimizer,
    )
    step = single_step(model, recipe)

    cancelled = False
    try:
        for epoch in range(run.epoch + 1, spec.epochs + 1):
            t0 = time.perf_counter()
            if spec.freeze is not None:
                warm_start.set_frozen(model, epoch <= spec.freeze_epochs)
            model.train()
            run_epoch(
                [lane], train, recipe, step, epoch=epoch, max_batches=max_batches, progress=progress
            )
            if lane.error is not None:
                raise lane.error
            if lane.stopped:
                cancelled = True
                break
            seconds = time.perf_counter() - t0
            metrics, improved = end_epoch(
                run, model, lane, val, recipe, epoch=epoch, seconds=seconds
            )
            report = EpochReport(
                metrics,
                snapshot(spec, meta, model, optimizer, run, warm, environment=environment),
                improved,
            )
            if on_epoch is not None and on_epoch(report):
                cancelled = epoch < spec.epochs
                break
            if run.stopped_early_at is not None:
                break
            if lane.stop():
                cancelled = epoch < spec.epochs
                break
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(spec.batch_size, str(device)) from exc

    best = snapshot(spec, meta, model, optimizer, run, warm, True, environment)
    test_acc, evaluated = None, None
    if not cancelled:
        test = splits.test.to(device) if evaluate_test and run.epoch > 0 else None
        test_acc, evaluated = evaluate_best(best, spec, val, test, device)
    return FitResult(
        epochs=[EpochMetrics(**m) for m in run.metrics],
        best_val_accuracy=run.best_val_accuracy,
        best_epoch=run.best_epoch,
        test_accuracy=test_acc,
        seconds=time.perf_counter() - started,
        cancelled=cancelled,
        best_checkpoint=best,
        last_checkpoint=snapshot(spec, meta, model, optimizer, run, warm, environment=environment),
        stopped_early_at=None if cancelled else run.stopped_early_at,
        warm_start=warm,
        evaluated=evaluated,
    )


def evaluate_best(
    best: CheckpointDoc, spec: TrainSpec, val: ImageSet, test: ImageSet | None, device: torch.device
) -> tuple[float | None, Evaluated]:
    """The best weights' accuracy on ``test`` (None without it), and the sets they were
    evaluated on."""
    accuracy = None
    if test is not None:
        model = ckpt_mod.load_model(best, device).to(memory_format=torch.channels_last)
        accuracy = evaluate(model, test, Normalize(best["dataset"], device))[1]
    names = list(best["dataset"]["class_names"])
    validation = LabelledSet(f"{spec.dataset}:validation", val.images, val.labels, names)
    tested = None if test is None else LabelledSet(spec.dataset, test.images, test.labels, names)
    return accuracy, Evaluated(validation, tested)


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
