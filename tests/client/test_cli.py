"""``cnnlab submit|search|jobs|watch|predict|cancel`` as a user runs them, against a service."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cnnlab.testing.procs import REPO
from cnnlab.testing.stack import Stack
from tests.utils.datasets import patterned_images
from tests.utils.service import TINY_MNIST_SPEC, cnnlab_cli


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(TINY_MNIST_SPEC))
    return path


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_submit_prints_the_id_and_watch_exits_with_the_outcome(
    stack: Stack, token: str, spec_file: Path
) -> None:
    submitted = cnnlab_cli(stack, "submit", str(spec_file), token=token)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert len(job_id) == 32 and "queued" in submitted.stderr

    watched = cnnlab_cli(stack, "watch", job_id, token=token)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "val_loss", "val_acc", "sec"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert lines[-1].startswith(f"job {job_id} succeeded after 2 epoch(s)")
    assert "test_accuracy" in lines[-1]

    # Watching an ended job replays it, and exits the same way.
    again = cnnlab_cli(stack, "watch", job_id, "--json", token=token)
    assert again.returncode == 0
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert [e["event"] for e in events] == ["epoch", "epoch", "status"]
    assert events[-1]["status"] == "succeeded"


def test_submit_watch_follows_in_one_command(stack: Stack, token: str, spec_file: Path) -> None:
    out = cnnlab_cli(stack, "submit", str(spec_file), "--watch", token=token)
    assert out.returncode == 0, out.stderr
    assert "succeeded after 2 epoch(s)" in out.stdout


def test_a_failed_job_exits_3_with_its_error(stack: Stack, token: str, tmp_path: Path) -> None:
    spec = tmp_path / "diverges.json"
    spec.write_text(
        json.dumps({**TINY_MNIST_SPEC, "optimizer": {"name": "sgd", "lr": 100, "momentum": 0.9}})
    )
    out = cnnlab_cli(stack, "submit", str(spec), "--watch", token=token)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "failed" in out.stdout and "diverged" in out.stdout


def test_cancel_then_watch_exits_4(stack: Stack, token: str, tmp_path: Path) -> None:
    spec = tmp_path / "long.json"
    spec.write_text(json.dumps({**TINY_MNIST_SPEC, "epochs": 200}))
    job_id = cnnlab_cli(stack, "submit", str(spec), token=token).stdout.strip()
    cancelled = cnnlab_cli(stack, "cancel", job_id, token=token)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(f"job {job_id}")
    watched = cnnlab_cli(stack, "watch", job_id, token=token)
    assert watched.returncode == 4, watched.stdout
    assert f"job {job_id} cancelled" in watched.stdout


def test_jobs_lists_and_filters_by_status(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    out = cnnlab_cli(stack, "jobs", "--status", "succeeded", token=token)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "DATASET", "EPOCH", "BEST_VAL", "TEST", "CREATED"]
    assert any(r.startswith(finished_job["id"]) for r in rows)
    assert all(r.split()[1] == "succeeded" for r in rows)
    listed = json.loads(cnnlab_cli(stack, "jobs", "--json", token=token).stdout)
    assert finished_job["id"] in {j["id"] for j in listed}
    bad = cnnlab_cli(stack, "jobs", "--status", "exploded", token=token)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_predict_classifies_image_files(
    stack: Stack, token: str, finished_job: dict[str, Any], tmp_path: Path
) -> None:
    images, labels = patterned_images(2, (28, 28), seed=11)
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    out = cnnlab_cli(stack, "predict", finished_job["id"], *paths, token=token)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split() == ["IMAGE", "LABEL", "CLASS", "P", "NEXT"]
    assert [r.split()[0] for r in rows] == ["digit0.png", "digit1.png"]
    assert [int(r.split()[1]) for r in rows] == labels.tolist()
    as_json = json.loads(
        cnnlab_cli(stack, "predict", finished_job["id"], paths[0], "--json", token=token).stdout
    )
    assert as_json[0]["file"] == paths[0] and len(as_json[0]["probabilities"]) == 10


def test_search_starts_a_grid(stack: Stack, token: str, tmp_path: Path) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": TINY_MNIST_SPEC, "grid": {"batch_size": [32, 64]}}))
    out = cnnlab_cli(stack, "search", str(grid), token=token)
    assert out.returncode == 0, out.stderr
    search_id = out.stdout.strip()
    assert "2 trials" in out.stderr and "batch_size" in out.stderr
    # `cancel` takes a search id too.
    cancelled = cnnlab_cli(stack, "cancel", search_id, token=token)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith(f"search {search_id}")


def test_api_errors_are_one_line(stack: Stack, token: str, tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**TINY_MNIST_SPEC, "optimizer": {"lr": -1}}))
    out = cnnlab_cli(stack, "submit", str(spec), token=token)
    assert out.returncode == 1
    assert "optimizer.lr" in _one_line_error(out.stderr) and out.stdout == ""

    missing = cnnlab_cli(stack, "watch", "0" * 32, token=token)
    assert missing.returncode == 1 and "not found" in _one_line_error(missing.stderr)

    bad_token = cnnlab_cli(stack, "jobs", token="nope")
    assert bad_token.returncode == 1 and "HTTP 401" in _one_line_error(bad_token.stderr)


def test_without_a_token_or_a_server_the_error_says_what_to_do(
    stack: Stack, token: str, spec_file: Path
) -> None:
    no_token = cnnlab_cli(stack, "jobs", token=None)
    assert no_token.returncode == 1 and "CNNLAB_TOKEN" in _one_line_error(no_token.stderr)

    unreachable = cnnlab_cli(stack, "jobs", "--url", "http://127.0.0.1:1", token=token)
    assert unreachable.returncode == 1
    assert "cannot reach http://127.0.0.1:1" in _one_line_error(unreachable.stderr)


def test_bad_input_files_are_usage_errors(stack: Stack, token: str, tmp_path: Path) -> None:
    missing = cnnlab_cli(stack, "submit", str(tmp_path / "nope.json"), token=token)
    assert missing.returncode == 2 and "cannot read" in _one_line_error(missing.stderr)
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    out = cnnlab_cli(stack, "submit", str(garbled), token=token)
    assert out.returncode == 2 and "is not JSON" in _one_line_error(out.stderr)
    no_image = cnnlab_cli(stack, "predict", "x", str(tmp_path / "none.png"), token=token)
    assert no_image.returncode == 2 and "no such file" in _one_line_error(no_image.stderr)


def test_watch_draws_a_progress_bar_on_a_terminal(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    # stderr on a pseudo-terminal (80 columns), stdout a pipe: the bar goes to the terminal,
    # the metrics table to the pipe.
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**stack.env, "CNNLAB_URL": stack.url, "CNNLAB_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "watch", finished_job["id"]],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    stdout, _ = proc.communicate(timeout=60)
    terminal = b""
    with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
        while chunk := os.read(master, 4096):
            terminal += chunk
    os.close(master)
    assert proc.returncode == 0
    assert f"job {finished_job['id'][:8]}: 100%" in terminal.decode()
    assert "2/2" in terminal.decode()
    assert "100%" not in stdout and stdout.splitlines()[0].startswith("epoch")


def test_registering_the_commands_needs_no_http_client() -> None:
    code = (
        "import argparse, sys\n"
        "from cnnlab.cli import remote\n"
        "remote.register(argparse.ArgumentParser().add_subparsers())\n"
        "assert 'httpx' not in sys.modules and 'cnnlab.client' not in sys.modules\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
