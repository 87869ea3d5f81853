"""Worker heartbeats over HTTP: ``GET /v1/workers`` lists the live ones, and a ``device: cuda``
job is refused (422 ``no_gpu_worker``) while none serves the gpu queue — or, with a grace,
accepted and failed by the sweeper once the grace has passed with still none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from api.main import create_app
from cnnlab.lifecycle.gpu import fail_jobs_without_gpu_worker
from cnnlab.settings import get_settings
from cnnlab.store import workers
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Worker, utcnow
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from worker.app import GPU_QUEUE
from worker.sweeper import sweep_once

SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
CUDA = {**SPEC, "device": "cuda"}


def beat(db_url: str, ident: str, queues: list[str], ago: float = 0.0) -> None:
    """A worker's heartbeat, as ``worker.heartbeat`` writes it, ``ago`` seconds old."""
    devices = ["NVIDIA H200"] if "gpu" in queues else []
    with session_scope(db_url) as s:
        now = utcnow() - timedelta(seconds=ago)
        workers.beat(s, ident, queues=queues, devices=devices, version="0.1.0", now=now)


def _app(**settings: Any) -> ApiClient:
    return ApiClient(create_app(settings=get_settings().model_copy(update=settings)))


@pytest.fixture(autouse=True)
def no_workers(db_url: str) -> None:
    """The workers table is shared by every user (and, on PostgreSQL, by this module's tests)."""
    with session_scope(db_url) as s:
        s.execute(delete(Worker))


@pytest.fixture
def with_grace(db_url: str) -> Iterator[ApiClient]:
    with _app(gpu_worker_grace_seconds=60) as client:
        yield client


def test_the_core_s_gpu_queue_is_the_worker_s() -> None:
    assert workers.GPU_QUEUE == GPU_QUEUE


def test_live_workers_are_listed_and_stale_ones_are_not(
    client: ApiClient, alice: Caller, db_url: str
) -> None:
    assert client.get("/v1/workers").status_code == 401
    r = client.get("/v1/workers", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "live_seconds": 30.0}

    beat(db_url, "gpu-host/7", ["gpu"])
    beat(db_url, "cpu-host/3", ["cpu"], ago=5)
    beat(db_url, "dead-host/9", ["cpu"], ago=31)
    items = client.get("/v1/workers", headers=alice.headers).json()["items"]
    assert [w["id"] for w in items] == ["cpu-host/3", "gpu-host/7"]
    cpu, gpu = items
    assert (gpu["queues"], gpu["devices"], gpu["version"]) == (["gpu"], ["NVIDIA H200"], "0.1.0")
    assert (cpu["queues"], cpu["devices"]) == (["cpu"], [])
    assert {"started_at", "last_seen"} <= cpu.keys()

    # A later beat keeps the start and moves last_seen; a clean stop removes the row.
    beat(db_url, "cpu-host/3", ["cpu"])
    again = client.get("/v1/workers", headers=alice.headers).json()["items"][0]
    assert again["started_at"] == cpu["started_at"] and again["last_seen"] > cpu["last_seen"]
    with session_scope(db_url) as s:
        workers.remove(s, "cpu-host/3")
    assert [w["id"] for w in client.get("/v1/workers", headers=alice.headers).json()["items"]] == [
        "gpu-host/7"
    ]


def test_rows_of_workers_long_dead_are_forgotten(db_url: str) -> None:
    beat(db_url, "dead-host/9", ["cpu"], ago=2 * 3600)
    beat(db_url, "live-host/1", ["cpu"])
    with session_scope(db_url) as s:
        ids = [w.id for w in workers.live_workers(s, within_seconds=10 * 3600)]
    assert ids == ["live-host/1"]


def test_a_cuda_job_without_a_live_gpu_worker_is_422(
    client: ApiClient, alice: Caller, db_url: str, mnist: Path
) -> None:
    beat(db_url, "cpu-host/3", ["cpu"])  # a CPU worker does not count
    beat(db_url, "gpu-host/7", ["gpu"], ago=60)  # nor does a GPU worker gone quiet
    r = client.post("/v1/jobs", json=CUDA, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert (detail["type"], detail["field"]) == ("no_gpu_worker", "device")
    assert "cnnlab worker --queues gpu" in detail["message"]
    # A search with cuda trials, in its base or in its grid, the same.
    for body in (
        {"base": CUDA, "grid": {"optimizer.lr": [0.01, 0.1]}},
        {"base": SPEC, "grid": {"device": ["cpu", "cuda"]}},
    ):
        r = client.post("/v1/searches", json=body, headers=alice.headers)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["type"] == "no_gpu_worker"
    assert client.get("/v1/jobs", headers=alice.headers).json()["items"] == []
    # Other devices need no GPU worker.
    for device in ("cpu", "auto"):
        r = client.post("/v1/jobs", json={**SPEC, "device": device}, headers=alice.headers)
        assert r.status_code == 201, r.text


def test_a_cuda_job_with_a_live_gpu_worker_is_accepted(
    client: ApiClient, alice: Caller, db_url: str, mnist: Path
) -> None:
    beat(db_url, "gpu-host/7", ["gpu"], ago=20)
    r = client.post("/v1/jobs", json=CUDA, headers=alice.headers)
    assert r.status_code == 201, r.text
    body = {"base": CUDA, "grid": {"optimizer.lr": [0.01, 0.1]}}
    assert client.post("/v1/searches", json=body, headers=alice.headers).status_code == 201


def test_with_a_grace_the_job_waits_then_fails_typed(
    with_grace: ApiClient, alice: Caller, db_url: str, mnist: Path
) -> None:
    r = with_grace.post("/v1/jobs", json=CUDA, headers=alice.headers)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    settings = with_grace.app.state.settings
    soon, later = utcnow() + timedelta(seconds=30), utcnow() + timedelta(seconds=61)
    with session_scope(db_url) as s:
        assert job_id not in fail_jobs_without_gpu_worker(s, settings, now=soon)  # in the grace
    beat(db_url, "gpu-host/7", ["gpu"])
    with session_scope(db_url) as s:
        assert fail_jobs_without_gpu_worker(s, settings, now=later) == []  # a GPU worker is live
        workers.remove(s, "gpu-host/7")
    with session_scope(db_url) as s:
        # (on PostgreSQL, this module's earlier cuda jobs too: the check is the deployment's)
        assert job_id in fail_jobs_without_gpu_worker(s, settings, now=later)
    job = with_grace.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()
    assert job["status"] == "failed" and job["finished_at"] is not None
    assert job["error"]["type"] == "no_gpu_worker" and job["error"]["field"] == "device"
    assert "60s" in job["error"]["message"]


def test_the_sweeper_fails_cuda_jobs_past_the_grace(
    db_url: str, alice: Caller, mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_GPU_WORKER_GRACE_SECONDS", "0.2")
    get_settings.cache_clear()
    with _app() as client:
        cuda = client.post("/v1/jobs", json=CUDA, headers=alice.headers).json()["id"]
        cpu = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"]
        time.sleep(0.3)
        sweep_once(waiting=lambda queue: 1)  # messages waiting: nothing is sent again
        statuses = {
            job_id: client.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()["status"]
            for job_id in (cuda, cpu)
        }
    assert statuses == {cuda: "failed", cpu: "queued"}
