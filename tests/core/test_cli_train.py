from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.utils.datasets import write_mnist

# The contract's epoch line, and the learning rate the epoch trained at (the recipe's schedule).
EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "seconds",
    "images_per_second",
    "lr",
}


def _cnnlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )  # fmt: skip


def _write_spec(path: Path, **doc: object) -> Path:
    base = {"dataset": "mnist", "val_size": 100, "batch_size": 64, "epochs": 2,
            "optimizer": {"lr": 0.05, "momentum": 0.9}}  # fmt: skip
    base.update(doc)
    path.write_text(json.dumps(base))
    return path


def test_json_lines_then_summary_and_checkpoints(data_dir: Path, tmp_path: Path) -> None:
    write_mnist(data_dir, n_train=400, n_test=50)
    out = tmp_path / "run"
    proc = _cnnlab("train", str(_write_spec(tmp_path / "spec.json")), "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [set(row) for row in lines[:2]] == [EPOCH_KEYS, EPOCH_KEYS]
    assert [row["epoch"] for row in lines[:2]] == [1, 2]
    summary = lines[2]
    assert {"best_val_accuracy", "test_accuracy", "seconds"} <= set(summary)
    assert len(lines) == 3
    best = torch.load(out / "best.pt")
    assert best["spec"]["dataset"] == "mnist" and best["epoch"] == summary["best_epoch"]

    # Resume the last checkpoint to 3 epochs: only epoch 3 is trained.
    more = _write_spec(tmp_path / "more.json", epochs=3)
    proc = _cnnlab("train", str(more), "--json", "--resume", str(out / "last.pt"))
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout.splitlines()[0])
    assert first["epoch"] == 3


def test_table_output_for_people(data_dir: Path, tmp_path: Path) -> None:
    write_mnist(data_dir, n_train=300, n_test=50)
    proc = _cnnlab("train", str(_write_spec(tmp_path / "s.json", epochs=1)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["epoch", "train_loss", "val_loss", "val_acc"]
    assert lines[1].split()[0] == "1"
    assert lines[-1].startswith("best val_accuracy")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"optimizer": {"lr": -1}}, "optimizer.lr"),
        ({"val_size": 400}, "val_size: 400 must be below the train split"),
        ({"dataset": "cifar10"}, "dataset 'cifar10' not found (looked in:"),
        ({"optimizer": {"lr": 100.0, "momentum": 0.9}}, "learning rate 100 diverged at epoch 1"),
    ],
)
def test_errors_are_one_clear_line(
    data_dir: Path, tmp_path: Path, doc: dict, expected: str
) -> None:
    write_mnist(data_dir, n_train=400, n_test=50)
    proc = _cnnlab("train", str(_write_spec(tmp_path / "bad.json", **doc)))
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
