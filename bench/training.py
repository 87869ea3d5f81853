"""Training throughput: ``cnnlab train`` against the notebook's loop, in one run.

Both train the notebook's CNN on real Fashion-MNIST (50k train / 10k validation, batch 1024,
SGD lr 0.1) for the same number of epochs, each in its own process timed from launch to exit.
images/s = training images × epochs / wall seconds, so start-up, data loading, validation and the
final test pass all count.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.reference import BATCH_SIZE, LEARNING_RATE, TRAIN_SIZE, VAL_SIZE, stage_fashion_mnist
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


def _figures(run: ProcessRun, epochs: int) -> dict[str, Any]:
    return {
        "wall_seconds": run.wall_seconds,
        "images_per_second": TRAIN_SIZE * epochs / run.wall_seconds,
        "epochs": run.epochs,
        "summary": run.summary,
    }


def run(epochs: int = 2, device: str = "auto") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        work = Path(tmp)
        data_dir = stage_fashion_mnist(work / "data")
        spec_path = work / "spec.json"
        spec = cnnlab_spec(epochs, device)
        spec_path.write_text(json.dumps(spec))
        # A fresh CNNLAB_HOME: cnnlab starts with a cold tensor cache, as on a first run.
        env = {"CNNLAB_HOME": str(work / "home"), "CNNLAB_DATA_DIR": str(data_dir)}

        print(f"reference (notebook loop), {epochs} epochs, device {device}:", flush=True)
        ref_cmd = [sys.executable, "-m", "bench.reference", str(data_dir), "--epochs", str(epochs)]
        reference = run_timed("reference", [*ref_cmd, "--device", device], env)
        print(f"cnnlab train, {epochs} epochs, device {device}:", flush=True)
        cnn_cmd = [sys.executable, "-m", "cnnlab", "train", str(spec_path), "--json"]
        cnnlab = run_timed("cnnlab", cnn_cmd, env)

    ref, ours = _figures(reference, epochs), _figures(cnnlab, epochs)
    return {
        "benchmark": "training",
        "epochs": epochs,
        "device": device,
        "train_images": TRAIN_SIZE,
        "spec": spec,
        "reference": ref,
        "cnnlab": ours,
        "speedup": ours["images_per_second"] / ref["images_per_second"],
    }


def report(result: dict[str, Any]) -> None:
    ref, ours = result["reference"], result["cnnlab"]
    print()
    print(f"training throughput, {result['epochs']} epochs of {result['train_images']:,} images")
    print(f"  {'':<10}{'wall s':>9}{'images/s':>12}{'best val':>10}{'test acc':>10}")
    for name, fig in (("reference", ref), ("cnnlab", ours)):
        summary = fig["summary"]
        print(
            f"  {name:<10}{fig['wall_seconds']:>9.1f}{fig['images_per_second']:>12,.0f}"
            f"{_fmt(summary.get('best_val_accuracy')):>10}{_fmt(summary.get('test_accuracy')):>10}"
        )
    print(f"  speedup (cnnlab / reference): {result['speedup']:.2f}x")
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
