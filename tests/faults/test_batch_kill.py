"""A batch prediction on a real worker process: SIGKILLed mid-way, the next attempt resumes
after the last chunk that committed and no input gets two rows; cancelled mid-way, it stops."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from cnnlab import lifecycle
from cnnlab.settings import get_settings
from cnnlab.store import model_versions as registry
from cnnlab.store.db import session_scope
from cnnlab.store.tables import BatchPredictionRow
from cnnlab.testing.stack import wait_until
from tests.faults.harness import TINY, owner, row, wait_row, worker_env, workers
from tests.utils.factories import submit
from worker.queue import enqueue_job

pytestmark = pytest.mark.slow

IMAGES = 1500
ENDED = {"succeeded", "failed", "cancelled"}


def _archive(n: int) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"{i:05d}.png", png.getvalue())
    return buf.getvalue()


def _rows(job_id: str) -> tuple[int, int]:
    """Rows written, and distinct indices among them."""
    with session_scope() as s:
        count, distinct = s.execute(
            select(func.count(), func.count(func.distinct(BatchPredictionRow.index))).where(
                BatchPredictionRow.job_id == job_id
            )
        ).one()
    return int(count), int(distinct)


def _model() -> str:
    """A registered model trained by the worker on the tiny MNIST."""
    job_id = submit(TINY)
    assert wait_row(job_id, ENDED, timeout=120).status == "succeeded"
    with session_scope() as s:
        registry.register_version(s, owner(), "batch", job_id)
    return "batch"


def _batch(name: str, data: bytes, folder: Path) -> str:
    path = folder / "batch.zip"
    path.write_bytes(data)
    archive = (path, hashlib.sha256(data).hexdigest())
    with session_scope() as s:
        job = lifecycle.submit_batch_prediction(
            s, owner(), name, {"version": 1}, archive=archive, settings=get_settings(),
            enqueue=enqueue_job,
        )  # fmt: skip
        return job.id


def _midway(job_id: str) -> None:
    def started() -> bool:
        return row(job_id).status == "running" and _rows(job_id)[0] >= 40

    wait_until(started, 60, f"batch {job_id} to be part done", poll=0.02)


def test_a_killed_batch_resumes_without_duplicate_rows(mnist_home: Path, tmp_path: Path) -> None:
    data = _archive(IMAGES)
    with workers(tmp_path, 1, worker_env(CNNLAB_BATCH_CHUNK="8")) as (worker,):
        name = _model()
        job_id = _batch(name, data, tmp_path)
        _midway(job_id)
        killed = row(job_id)
        os.kill(killed.pid, signal.SIGKILL)
        done_at_kill = _rows(job_id)[0]
        final = wait_row(job_id, ENDED, timeout=120)
        log = worker.text()
    assert final.status == "succeeded", (final, log[-3000:])
    assert final.attempts == 2
    assert done_at_kill < IMAGES
    assert _rows(job_id) == (IMAGES, IMAGES)
    assert f"batch job {job_id} resumes at input" in log


def test_a_running_batch_is_cancelled(mnist_home: Path, tmp_path: Path) -> None:
    # Many one-image chunks: the batch is still running well after the cancel's next poll.
    data = _archive(IMAGES)
    with workers(tmp_path, 1, worker_env(CNNLAB_BATCH_CHUNK="1")):
        name = _model()
        job_id = _batch(name, data, tmp_path)
        _midway(job_id)
        with session_scope() as s:
            lifecycle.cancel_job(s, owner(), job_id)
        final = wait_row(job_id, ENDED, timeout=60)
    assert final.status == "cancelled"
    assert _rows(job_id)[0] < IMAGES
