"""Training throughput: ``cnnlab train`` against the notebook's loop, in one run.

Both train the notebook's CNN on real Fashion-MNIST (50k train / 10k validation, batch 1024,
SGD lr 0.1) for the same number of epochs, each in its own process timed from launch to exit.
images/s = training images × epochs / wall seconds, so start-up, data loading, validation and the
final test pass all count. The steady-state ratio compares the epochs after the first (each
epoch's own images/s), where start-up costs no longer weigh.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.reference import (
    BATCH_SIZE,
    DEBIAN_FASHION_MNIST,
    LEARNING_RATE,
    TRAIN_SIZE,
    VAL_SIZE,
    stage_fashion_mnist,
)
from bench.runner import ProcessRun, run_timed


def cnnlab_spec(epochs: int, device: str) -> dict[str, Any]:
    """The reference's setup as a cnnlab train spec (every other field at its default)."""
    return {
        "dataset": "fashion_mnist",
        "val_size": VAL_SIZE,
        "batch_size": BATCH_SIZE,
        "optimizer": {"lr": LEARNING_RATE},
        "epochs": epochs,
        "device": device,
    }


def _figures(runs: list[ProcessRun], epochs: int) -> dict[str, Any]:
    """The fastest of the repeated runs (the one least disturbed by other load), and every wall
    time so the spread is on record."""
    best = min(runs, key=lambda r: r.wall_seconds)
    later = best.epochs[1:] or best.epochs
    return {
        "wall_seconds": best.wall_seconds,
        "images_per_second": TRAIN_SIZE * epochs / best.wall_seconds,
        "steady_images_per_second": statistics.mean(e["images_per_second"] for e in later),
        "all_wall_seconds": [r.wall_seconds for r in runs],
        "epochs": best.epochs,
        "summary": best.summary,
    }


def run(
    epochs: int = 2,
    device: str = "auto",
    repeat: int = 1,
    source: Path = DEBIAN_FASHION_MNIST,
) -> dict[str, Any]:
    spec = cnnlab_spec(epochs, device)
    references: list[ProcessRun] = []
    ours: list[ProcessRun] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        work = Path(tmp)
        data_dir = stage_fashion_mnist(work / "data", source)
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec))
        ref_cmd = [sys.executable, "-m", "bench.reference", str(data_dir)]
        ref_cmd += ["--epochs", str(epochs), "--device", device]
        our_cmd = [sys.executable, "-m", "cnnlab", "train", str(spec_path), "--json"]
        # Alternated, so that a burst of other load on the machine hits both sides alike.
        for i in range(1, repeat + 1):
            tag = f" (run {i}/{repeat})" if repeat > 1 else ""
            # A fresh CNNLAB_HOME each time: cnnlab starts with a cold tensor cache, as on a
            # first run, and both sides read the same staged files.
            env = {"CNNLAB_HOME": str(work / f"home{i}"), "CNNLAB_DATA_DIR": str(data_dir)}
            print(
                f"reference (notebook loop), {_epochs(epochs)}, device {device}{tag}:", flush=True
            )
            references.append(run_timed("reference", ref_cmd, env))
            print(f"cnnlab train, {_epochs(epochs)}, device {device}{tag}:", flush=True)
            ours.append(run_timed("cnnlab", our_cmd, env))

    ref, our = _figures(references, epochs), _figures(ours, epochs)
    return {
        "benchmark": "training",
        "epochs": epochs,
        "device": device,
        "repeat": repeat,
        "train_images": TRAIN_SIZE,
        "spec": spec,
        "reference": ref,
        "cnnlab": our,
        "speedup": our["images_per_second"] / ref["images_per_second"],
        "steady_speedup": our["steady_images_per_second"] / ref["steady_images_per_second"],
    }


def report(result: dict[str, Any]) -> None:
    ref, ours = result["reference"], result["cnnlab"]
    best_of = f", best of {result['repeat']}" if result["repeat"] > 1 else ""
    print()
    print(
        f"training throughput, {_epochs(result['epochs'])} of {result['train_images']:,} images, "
        f"device {result['device']}{best_of}"
    )
    print(f"  {'':<10}{'wall s':>9}{'images/s':>12}{'best val':>10}{'test acc':>10}")
    for name, fig in (("reference", ref), ("cnnlab", ours)):
        summary = fig["summary"]
        print(
            f"  {name:<10}{fig['wall_seconds']:>9.1f}{fig['images_per_second']:>12,.0f}"
            f"{_fmt(summary.get('best_val_accuracy')):>10}{_fmt(summary.get('test_accuracy')):>10}"
        )
    print(f"  speedup, whole process (cnnlab / reference): {result['speedup']:.2f}x")
    print(f"  speedup, steady-state epochs:                 {result['steady_speedup']:.2f}x")
    print()
    print("  per epoch (seconds, training images/s, validation accuracy):")
    for ref_epoch, our_epoch in zip(ref["epochs"], ours["epochs"], strict=False):
        print(
            f"    epoch {ref_epoch['epoch']}: reference {_epoch(ref_epoch)}"
            f" | cnnlab {_epoch(our_epoch)}"
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _epoch(record: dict[str, Any]) -> str:
    return (
        f"{record['seconds']:6.1f}s {record['images_per_second']:>9,.0f}/s "
        f"{record['val_accuracy']:.4f}"
    )


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"
