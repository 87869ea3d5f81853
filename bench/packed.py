"""Packed trials: K trials trained as one packed model against the same K one after another.

Both sides run in this process on the same device, on real Fashion-MNIST (50k training / 10k
validation images, batch 1024): a grid of K = 8 SGD trials (lr × momentum, one seed) that
:mod:`cnnlab.engine.packed` can pack. The sequential reference is
``cnnlab.engine.training.fit`` per trial; the packed side is ``cnnlab.engine.packed.fit_packed``
over all of them. Each side trains ``--batches``
batches per trial (``max_batches``, one epoch) and validates once, so the figure is a few hundred
batches in all; the dataset is loaded before either clock starts. The largest relative
difference of a trial's validation loss between the two sides is printed beside the speed, so
speed is not bought with different results.

On a GPU this is issue 13's figure (target ≥ 4× for 8 trials); a CPU has no idle units to fill,
so there the ratio shows only what batching the trials' small kernels saves.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reference import BATCH_SIZE, DEBIAN_FASHION_MNIST, VAL_SIZE, stage_fashion_mnist
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec

LRS = (0.02, 0.05, 0.1, 0.2)
MOMENTA = (0.0, 0.9)
DEFAULT_BATCHES = 40  # per trial: 8 trials × 40 = 320 batches a side


def specs(device: str) -> list[Any]:
    return [
        TrainSpec.model_validate(
            {
                "dataset": "fashion_mnist",
                "val_size": VAL_SIZE,
                "batch_size": BATCH_SIZE,
                "optimizer": {"lr": lr, "momentum": momentum},
                "epochs": 1,
                "device": device,
            }
        )
        for lr in LRS
        for momentum in MOMENTA
    ]


def run(
    device: str = "auto",
    batches: int = DEFAULT_BATCHES,
    repeat: int = 1,
    source: Path = DEBIAN_FASHION_MNIST,
) -> dict[str, Any]:
    import torch

    from cnnlab.datasets.loading import load_split
    from cnnlab.engine.packed import PackedTrial, can_pack, fit_packed
    from cnnlab.engine.training import FitResult, fit, resolve_device

    trials = specs(device)
    assert can_pack(trials)
    resolved = resolve_device(device)
    name = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else "cpu"
    sequential: list[float] = []
    packed: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        work = Path(tmp)
        settings = Settings(home=work / "home", data_dir=stage_fashion_mnist(work / "data", source))
        load_split("fashion_mnist", train=True, settings=settings)  # decoded before the clocks
        load_split("fashion_mnist", train=False, settings=settings)
        # Warm-up: the first convolutions of a process pick their kernels.
        fit(trials[0], settings=settings, max_batches=2, evaluate_test=False)
        fit_packed([PackedTrial(trials[0])] * 2, settings=settings, max_batches=2)
        for i in range(1, repeat + 1):
            tag = f" (run {i}/{repeat})" if repeat > 1 else ""
            print(f"{len(trials)} trials one after another, {batches} batches each{tag}:")
            t0 = time.perf_counter()
            alone = [
                fit(s, settings=settings, max_batches=batches, evaluate_test=False) for s in trials
            ]
            _sync(resolved)
            sequential.append(time.perf_counter() - t0)
            print(f"  {sequential[-1]:.1f}s")
            print(f"{len(trials)} trials packed, {batches} batches each{tag}:")
            t0 = time.perf_counter()
            together = fit_packed(
                [PackedTrial(s) for s in trials],
                settings=settings,
                max_batches=batches,
                evaluate_test=False,
            )
            _sync(resolved)
            packed.append(time.perf_counter() - t0)
            print(f"  {packed[-1]:.1f}s")
    worst = 0.0
    for a, b in zip(alone, together, strict=True):
        assert isinstance(b, FitResult), b
        x, y = a.epochs[-1].val_loss, b.epochs[-1].val_loss
        worst = max(worst, abs(x - y) / abs(x))
    images = len(trials) * batches * BATCH_SIZE
    seq_s, packed_s = min(sequential), min(packed)
    return {
        "benchmark": "packed",
        "device": str(resolved),
        "device_name": name,
        "trials": len(trials),
        "batches_per_trial": batches,
        "batch_size": BATCH_SIZE,
        "repeat": repeat,
        "sequential_seconds": seq_s,
        "packed_seconds": packed_s,
        "all_sequential_seconds": sequential,
        "all_packed_seconds": packed,
        "sequential_images_per_second": images / seq_s,
        "packed_images_per_second": images / packed_s,
        "speedup": seq_s / packed_s,
        "max_val_loss_rel_diff": worst,
        "val_accuracy": [b.epochs[-1].val_accuracy for b in together if isinstance(b, FitResult)],
    }


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def report(result: dict[str, Any]) -> None:
    best_of = f", best of {result['repeat']}" if result["repeat"] > 1 else ""
    print()
    print(
        f"packed trials, {result['trials']} SGD trials × {result['batches_per_trial']} batches of "
        f"{result['batch_size']} (+ validation), device {result['device']} "
        f"({result['device_name']}){best_of}"
    )
    print(f"  {'':<12}{'wall s':>9}{'images/s':>12}")
    for label, key in (("sequential", "sequential"), ("packed", "packed")):
        print(
            f"  {label:<12}{result[f'{key}_seconds']:>9.1f}"
            f"{result[f'{key}_images_per_second']:>12,.0f}"
        )
    print(f"  speedup (packed / one after another): {result['speedup']:.2f}x")
    print(
        "  largest relative difference of a trial's val_loss: "
        f"{result['max_val_loss_rel_diff']:.1e}"
    )
