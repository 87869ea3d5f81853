"""``cnnlab serve`` on the embedded defaults, driven over HTTP like a user would: jobs, a grid
search, cancellation, typed failures, checkpoints and predictions, on real Fashion-MNIST."""

from __future__ import annotations

import io
import itertools
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.engine.predict import Predictor
from cnnlab.testing.stack import ENDED, Stack, wait_for_job, wait_until
from tests.e2e.conftest import FAST_SPEC

pytestmark = pytest.mark.slow


def test_a_job_runs_end_to_end(
    embedded_stack: Stack, alice: httpx.Client, real_fashion_mnist: Path
) -> None:
    submitted = alice.post("/v1/jobs", json=FAST_SPEC)
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["status"] == "queued"

    seen_running = wait_for_job(alice, job_id, {"running", *ENDED}, timeout=60)
    assert seen_running["status"] == "running", seen_running
    job = wait_for_job(alice, job_id, ENDED, timeout=180)
    assert job["status"] == "succeeded", (job, embedded_stack.logs())
    assert job["attempts"] == 1 and job["epoch"] == 2 and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    assert 0.5 < job["test_accuracy"] <= 1.0

    metrics = alice.get(f"/v1/jobs/{job_id}/metrics").json()
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert job["best_val_accuracy"] == pytest.approx(max(m["val_accuracy"] for m in metrics))

    blob = alice.get(f"/v1/jobs/{job_id}/checkpoint")
    assert blob.status_code == 200
    ckpt = torch.load(io.BytesIO(blob.content), weights_only=True)
    local = Predictor(ckpt)

    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    answer = alice.post(f"/v1/jobs/{job_id}/predict", json={"instances": images.tolist()})
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]
    expected = local.predict_arrays(list(images))
    assert [p["label"] for p in served] == [p["label"] for p in expected]
    for got, want in zip(served, expected, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)

    png = io.BytesIO()
    Image.fromarray(images[1]).save(png, format="PNG")
    files = [("files", ("one.png", png.getvalue(), "image/png"))]
    answer = alice.post(f"/v1/jobs/{job_id}/predict", files=files)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == expected[1]["label"]


def test_cancelling_a_running_job_ends_it_within_an_epoch(
    embedded_stack: Stack, alice: httpx.Client, real_fashion_mnist: Path
) -> None:
    job_id = alice.post("/v1/jobs", json={**FAST_SPEC, "epochs": 50}).json()["id"]

    def first_epoch_done() -> bool:
        return bool(alice.get(f"/v1/jobs/{job_id}").json()["epoch"])

    wait_until(first_epoch_done, 120, "the first epoch", poll=0.1)
    epoch_seconds = alice.get(f"/v1/jobs/{job_id}/metrics").json()[0]["seconds"]
    asked = time.monotonic()
    assert alice.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait_for_job(alice, job_id, ENDED, timeout=60)
    took = time.monotonic() - asked

    assert job["status"] == "cancelled", job
    assert took < 2 * epoch_seconds + 5, f"stopping took {took:.1f}s; an epoch {epoch_seconds:.1f}s"
    assert job["epoch"] < 50
    epochs = [m["epoch"] for m in alice.get(f"/v1/jobs/{job_id}/metrics").json()]
    assert epochs == list(range(1, job["epoch"] + 1))


def test_a_diverging_job_fails_with_a_typed_error(
    embedded_stack: Stack, alice: httpx.Client, real_fashion_mnist: Path
) -> None:
    spec = {**FAST_SPEC, "epochs": 1, "optimizer": {"name": "sgd", "lr": 100.0}}
    job_id = alice.post("/v1/jobs", json=spec).json()["id"]
    job = wait_for_job(alice, job_id, ENDED, timeout=120)
    assert job["status"] == "failed", job
    assert job["error"]["type"] == "diverged"
    assert "Traceback" not in job["error"]["message"]
    assert alice.post(f"/v1/jobs/{job_id}/predict", json={"instances": []}).status_code in {
        409,
        422,
    }


def test_a_grid_search_runs_its_trials_in_parallel_and_picks_the_best(
    embedded_stack: Stack, alice: httpx.Client, real_fashion_mnist: Path
) -> None:
    body = {
        "base": FAST_SPEC,
        "grid": {"optimizer.lr": [0.05, 0.2], "batch_size": [128, 256]},
        "metric": "val_accuracy",
        "mode": "max",
    }
    created = alice.post("/v1/searches", json=body)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    assert len(created.json()["trials"]) == 4

    def ended() -> dict | None:
        search = alice.get(f"/v1/searches/{search_id}").json()
        return search if search["status"] in ENDED else None

    search = wait_until(ended, 300, "the search to end", poll=0.2)
    assert search["status"] == "succeeded", (search, embedded_stack.logs())
    trials = search["trials"]
    assert sorted((t["params"]["optimizer.lr"], t["params"]["batch_size"]) for t in trials) == [
        (0.05, 128),
        (0.05, 256),
        (0.2, 128),
        (0.2, 256),
    ]
    assert all(t["status"] == "succeeded" for t in trials)
    best = max(trials, key=lambda t: t["val_accuracy"])
    assert search["best_job_id"] == best["job_id"]
    best_job = alice.get(f"/v1/jobs/{best['job_id']}").json()
    assert search["test_accuracy"] == pytest.approx(best_job["test_accuracy"])

    jobs = [alice.get(f"/v1/jobs/{t['job_id']}").json() for t in trials]
    spans = sorted(
        (datetime.fromisoformat(j["started_at"]), datetime.fromisoformat(j["finished_at"]))
        for j in jobs
    )
    overlapped = any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    assert overlapped, f"two workers ran the trials one after another: {spans}"
