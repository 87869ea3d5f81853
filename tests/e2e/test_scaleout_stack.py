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
