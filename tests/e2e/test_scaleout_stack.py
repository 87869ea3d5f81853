"""The production shape: ``cnnlab api`` and separate ``cnnlab worker`` processes sharing only
PostgreSQL and Redis (as they would on different machines). Same code, two URLs."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cnnlab.testing.procs import WORKER_READY, Proc
from cnnlab.testing.stack import CNNLAB, ENDED, Stack, free_port, stack_env, started, wait_for_job
from tests.e2e.conftest import FAST_SPEC
from tests.utils.redis import redis_url as redis_db_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS_URL = redis_db_url(6)  # this suite's own Redis database


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    import psycopg

    name = f"cnnlab_test_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def scaleout_stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Stack]:
    env = stack_env(
        tmp_path_factory.mktemp("scaleout-home"),
        CNNLAB_DATABASE_URL=database_url,
        CNNLAB_BROKER_URL=redis_url,
    )
    # Each process gets its own home, as on separate machines: nothing shared but the two URLs.
    homes = [tmp_path_factory.mktemp(f"machine{i}") for i in range(3)]
    port = free_port()
    api = Proc([*CNNLAB, "api", f"--port={port}"], homes[0] / "api.log", env)
    workers = [
        Proc(
            [*CNNLAB, "worker", "--concurrency=1", "--threads=1"],
            home / "worker.log",
            {**env, "CNNLAB_HOME": str(home)},
        )
        for home in homes[1:]
    ]
    with started(Stack(f"http://127.0.0.1:{port}", env, [api, *workers])) as stack:
        for w in workers:
            w.wait_for(WORKER_READY, timeout=60)
        yield stack


@pytest.fixture
def bob(scaleout_stack: Stack) -> Iterator[httpx.Client]:
    with scaleout_stack.client("bob") as client:
        yield client


def test_a_job_runs_end_to_end_on_postgres_and_redis(
    scaleout_stack: Stack, bob: httpx.Client, real_fashion_mnist: Path
) -> None:
    job_id = bob.post("/v1/jobs", json=FAST_SPEC).json()["id"]
    job = wait_for_job(bob, job_id, ENDED, timeout=180)
    assert job["status"] == "succeeded", (job, scaleout_stack.logs())
    assert job["attempts"] == 1
    assert [m["epoch"] for m in bob.get(f"/v1/jobs/{job_id}/metrics").json()] == [1, 2]
    assert bob.get(f"/v1/jobs/{job_id}/checkpoint").status_code == 200
    answer = bob.post(f"/v1/jobs/{job_id}/predict", json={"instances": [[[0] * 28] * 28]})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"][0]["probabilities"]) == 10


def test_a_waiting_worker_starts_a_job_quickly(
    scaleout_stack: Stack,
    bob: httpx.Client,
    real_fashion_mnist: Path,
    record_property: Callable[[str, object], None],
) -> None:
    latencies = []
    for _ in range(5):
        t0 = time.perf_counter()
        # Long enough that the cancel below always lands before the last epoch.
        job_id = bob.post("/v1/jobs", json={**FAST_SPEC, "epochs": 100}).json()["id"]
        wait_for_job(bob, job_id, {"running", *ENDED}, timeout=60)
        latencies.append(time.perf_counter() - t0)
        # Only the start is measured: free the worker for the next sample.
        bob.post(f"/v1/jobs/{job_id}/cancel")
        assert wait_for_job(bob, job_id, ENDED, timeout=60)["status"] == "cancelled"
    p50 = statistics.median(latencies)
    record_property("submit_to_running_p50_ms", round(p50 * 1000))
    # The contract's target is 100 ms; the bound here leaves room for a loaded test machine.
    assert p50 < 1.0, latencies


def test_an_upload_trains_on_workers_that_share_only_the_database(
    scaleout_stack: Stack, bob: httpx.Client, tmp_path: Path
) -> None:
    """Ingest on one worker, training on whichever takes the job: each fetches the bytes it
    needs from PostgreSQL into its own home. The API answers /healthz while an upload streams."""
    import io
    import threading

    from tests.utils.image_archives import make_zip, picture, real_images, write_class_folders

    folder = write_class_folders(tmp_path / "parts", per_class=12, names=["a", "b", "c"])
    body = make_zip(folder).read_bytes()
    streaming, health = threading.Event(), []

    def slowly() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]
            streaming.set()
            if len(health) == 0:
                time.sleep(0.05)  # until /healthz answered mid-upload

    def check_health() -> None:
        streaming.wait(30)
        health.append(httpx.get(f"{scaleout_stack.url}/healthz", timeout=30).status_code)

    checker = threading.Thread(target=check_health)
    checker.start()
    r = bob.post(
        "/v1/datasets",
        params={"name": "parts"},
        content=slowly(),
        headers={"Content-Type": "application/zip"},
    )
    checker.join()
    assert health == [200]
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (record := bob.get("/v1/datasets/parts/versions/1").json())["status"] == "ingesting":
        assert time.monotonic() < deadline, scaleout_stack.logs()
        time.sleep(0.5)
    assert record["status"] == "ready", (record, scaleout_stack.logs())

    spec = {"dataset": "parts", "val_size": 0.2, "batch_size": 8, "epochs": 1}
    job_id = bob.post("/v1/jobs", json=spec).json()["id"]
    job = wait_for_job(bob, job_id, ENDED, timeout=180)
    assert job["status"] == "succeeded", (job, scaleout_stack.logs())
    png = io.BytesIO()
    picture(real_images(1, [1], offset=50)[0][1], (45, 45)).save(png, format="PNG")
    answer = bob.post(f"/v1/jobs/{job_id}/predict", files={"files": ("x.png", png.getvalue())})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["class_name"] in {"a", "b", "c"}
