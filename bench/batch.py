"""Batch predictions against the synchronous predict route, in one run on one stack:

- a 10,000-image batch-prediction job (``POST /v1/models/{name}/batch-predictions`` with a zip
  of PNG files, timed from the upload's first byte to the job's ``succeeded``);
- the same images posted to ``POST /v1/models/{name}/predict`` 64 at a time, one request after
  another from one client.

Both on the real stack (``cnnlab api`` and one ``cnnlab worker`` process on loopback, SQLite), a
model trained on real Fashion-MNIST by a job and registered; the images are Fashion-MNIST's
test split as PNG files. Target: the batch job ≥ 5× the images/s of the synchronous client.
"""

from __future__ import annotations

import io
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.runner import RunFailed
from bench.service import (
    MODEL_NAME,
    MODEL_SPEC,
    Service,
    _as_run_failed,
    _png,
    _wait_status,
    running_stack,
)
from cnnlab.settings import Settings
from cnnlab.testing.stack import wait_until

IMAGES = 10_000
PER_REQUEST = 64
TARGET_RATIO = 5.0


def run() -> dict[str, Any]:
    with running_stack(None) as service, service.client() as client:
        _train_and_register(service, client)
        pngs = _pngs(service)
        sync = _sync(client, pngs)
        batch = _batch(client, pngs)
        batch["worker_stages"] = _worker_stages(service, batch["job_id"])
    ratio = batch["images_per_second"] / sync["images_per_second"]
    return {
        "images": len(pngs),
        "sync": sync,
        "batch": batch,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
    }


def _train_and_register(service: Service, client: httpx.Client) -> None:
    job = client.post("/v1/jobs", json=MODEL_SPEC).raise_for_status().json()
    done = _wait_status(client, job["id"], {"succeeded", "failed", "cancelled"}, timeout=600)
    if done["status"] != "succeeded":
        raise RunFailed(f"the model's job ended {done['status']}: {done.get('error')}")
    client.post("/v1/models", json={"name": MODEL_NAME, "job_id": job["id"]}).raise_for_status()


def _pngs(service: Service) -> list[bytes]:
    """Fashion-MNIST's test images as PNG files, as a user would have them on disk."""
    from cnnlab.datasets.loading import load_split

    home = service.stack.env["CNNLAB_HOME"]
    test = load_split("fashion_mnist", train=False, settings=Settings(home=home))
    images = test.images[:IMAGES, 0].numpy()
    return [_png(np.asarray(img, dtype=np.uint8)) for img in images]


def _sync(client: httpx.Client, pngs: list[bytes]) -> dict[str, float]:
    path = f"/v1/models/{MODEL_NAME}/predict"
    started = time.perf_counter()
    for start in range(0, len(pngs), PER_REQUEST):
        files = [
            ("files", (f"{start + i}.png", png, "image/png"))
            for i, png in enumerate(pngs[start : start + PER_REQUEST])
        ]
        client.post(path, files=files).raise_for_status()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "images_per_second": len(pngs) / seconds}


def _batch(client: httpx.Client, pngs: list[bytes]) -> dict[str, Any]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, png in enumerate(pngs):
            zf.writestr(f"images/{i:05d}.png", png)
    archive = buf.getvalue()
    started = time.perf_counter()
    job = (
        client.post(
            f"/v1/models/{MODEL_NAME}/batch-predictions",
            content=archive,
            headers={"Content-Type": "application/zip"},
        )
        .raise_for_status()
        .json()
    )
    uploaded = time.perf_counter()

    def ended() -> dict[str, Any] | None:
        current: dict[str, Any] = (
            client.get(f"/v1/batch-predictions/{job['id']}").raise_for_status().json()
        )
        return current if current["status"] in ("succeeded", "failed", "cancelled") else None

    with _as_run_failed():
        done = wait_until(ended, 600, f"batch prediction {job['id']}", poll=0.05)
    seconds = time.perf_counter() - started
    if done["status"] != "succeeded" or done["result"]["predicted"] != len(pngs):
        raise RunFailed(f"the batch prediction ended {done['status']}: {done.get('error')}")
    created, began, ended_at = (
        datetime.fromisoformat(done[k]) for k in ("created_at", "started_at", "finished_at")
    )
    return {
        "job_id": job["id"],
        "seconds": seconds,
        "images_per_second": len(pngs) / seconds,
        # Where the time went: the upload (until the 202), the queue, the worker's run.
        "upload_seconds": uploaded - started,
        "queued_seconds": (began - created).total_seconds(),
        "run_seconds": (ended_at - began).total_seconds(),
        "archive_bytes": len(archive),
    }


def _worker_stages(service: Service, job_id: str) -> str:
    """The worker's own account of the job's run (its log line: setup, read, decode, forward,
    write)."""
    log = Path(service.stack.env["CNNLAB_HOME"]) / "worker.log"
    marker = f"batch job {job_id}: "
    lines = [line for line in log.read_text().splitlines() if marker in line]
    return lines[-1].split(marker, 1)[1] if lines else "(not logged)"


def report(result: dict[str, Any]) -> None:
    sync, batch = result["sync"], result["batch"]
    print(f"batch predictions: {result['images']} Fashion-MNIST PNG files")
    print(f"  predict route, {PER_REQUEST} per request: {sync['images_per_second']:8.0f} images/s")
    print(f"  one batch-prediction job:        {batch['images_per_second']:8.0f} images/s")
    print(
        f"    (upload {batch['upload_seconds']:.1f} s, queued {batch['queued_seconds']:.1f} s, "
        f"worker {batch['run_seconds']:.1f} s)"
    )
    print(f"    worker: {batch['worker_stages']}")
    verdict = "meets" if result["meets_target"] else "misses"
    print(f"  ratio {result['ratio']:.1f}× ({verdict} the ≥ {TARGET_RATIO:.0f}× target)")
