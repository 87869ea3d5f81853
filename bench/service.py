"""Service figures, each printed beside what it is compared with, measured in the same run:

- one-image prediction over HTTP (p50, p99) vs the same prediction in process;
- prediction throughput with 64-image requests vs the same batches in process;
- the same latency and throughput by a registered model's name (``POST /v1/models``, then
  ``POST /v1/models/{name}/predict``) vs the job's own predict route;
- submit → ``running`` with a waiting worker, on Redis and on the embedded broker;
- ``GET /v1/jobs/{id}`` requests/s from one API process vs ``GET /healthz`` (no database), and
  the same on PostgreSQL where a server answers (``CNNLAB_BENCH_POSTGRES``, an admin URL).

The stack is the real one: ``cnnlab api`` and ``cnnlab worker`` processes on loopback, SQLite,
a model trained on real Fashion-MNIST by a job. HTTP figures come from :mod:`bench.load`, a
client lean enough that they are the server's.

The stack, and the PostgreSQL database, are started by the tests' own helpers
(:mod:`cnnlab.testing.stack`, :mod:`cnnlab.testing.postgres`): the benchmark runs from a
checkout, as ``python -m bench`` in the repository's root.
"""

from __future__ import annotations

import io
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import load
from bench.runner import RunFailed
from cnnlab.status import ENDED_NAMES
from cnnlab.testing.procs import Proc
from cnnlab.testing.stack import (
    CNNLAB,
    Stack,
    create_token,
    free_port,
    stack_env,
    started,
    wait_for_job,
)

REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DB = "cnnlab_bench"
MODEL_SPEC = {
    "dataset": "fashion_mnist",
    "train_size": 5000,
    "val_size": 1000,
    "batch_size": 256,
    "epochs": 1,
    "optimizer": {"lr": 0.05, "momentum": 0.9},
}
# Started, then cancelled at once: only the start is timed.
START_SPEC = {**MODEL_SPEC, "epochs": 50}
TARGETS = {
    "predict_p50_ms": 5.0,
    "predict_images_per_second": 3000.0,
    "submit_to_running_p50_ms": 100.0,
    "get_job_requests_per_second": 1000.0,
}


@dataclass
class Service:
    """A running stack, and the token of its user ``bench``."""

    stack: Stack
    token: str

    @property
    def url(self) -> str:
        return self.stack.url

    def client(self) -> httpx.Client:
        return self.stack.client_for(self.token, timeout=120)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_stack(broker: str | None, database: str | None = None) -> Iterator[Service]:
    """``cnnlab api`` and one ``cnnlab worker`` (one pool process) under a fresh home, on
    ``database`` (default: SQLite in that home)."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        home = Path(tmp)
        # No per-token rate limit: the load test's requests would be answered 429.
        settings = {"PYTHONUNBUFFERED": "1", "CNNLAB_RATE_LIMIT_PER_MINUTE": "0"}
        if broker:
            settings["CNNLAB_BROKER_URL"] = broker
            _flush_redis_db(broker)
        if database:
            settings["CNNLAB_DATABASE_URL"] = database
        env = stack_env(home, **settings)
        with ExitStack() as running:
            with _as_run_failed():
                token = create_token(env, "bench")  # also applies the migrations
                port = free_port()
                worker = Proc(
                    [*CNNLAB, "worker", "--queues=cpu", "--concurrency=1"], home / "worker.log", env
                )
                api = Proc([*CNNLAB, "api", f"--port={port}"], home / "api.log", env)
                stack = Stack(f"http://127.0.0.1:{port}", env, [worker, api])
                running.enter_context(started(stack, timeout=120))
                worker.wait_for(r"ready\.", timeout=120)
            yield Service(stack, token)


@contextmanager
def _as_run_failed() -> Iterator[None]:
    """The tests' helpers fail as a test does, with an AssertionError; a benchmark fails with
    :class:`RunFailed`."""
    try:
        yield
    except AssertionError as exc:
        raise RunFailed(str(exc)) from exc


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh database on the PostgreSQL server at ``CNNLAB_BENCH_POSTGRES`` (an admin URL),
    dropped afterwards; None where no server answers."""
    import psycopg

    from cnnlab.testing.postgres import create_database, drop_database

    admin = os.environ.get("CNNLAB_BENCH_POSTGRES", POSTGRES_ADMIN_URL)
    try:
        url = create_database(POSTGRES_DB, admin)
    except psycopg.Error:
        yield None
        return
    try:
        yield url
    finally:
        drop_database(POSTGRES_DB, admin)


def _flush_redis_db(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def _wait_status(
    client: httpx.Client, job_id: str, wanted: Collection[str], timeout: float
) -> dict[str, Any]:
    with _as_run_failed():
        return wait_for_job(client, job_id, wanted, timeout)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _timed(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


MODEL_NAME = "bench"


def _predict_request(service: Service, path: str, **content: Any) -> bytes:
    """A prediction request to ``path`` on the wire, encoded (JSON or multipart) by httpx once."""
    request = httpx.Request("POST", f"{service.url}{path}", **content)
    return load.build(
        service.url,
        request.url.raw_path.decode(),
        method="POST",
        headers={"Authorization": f"Bearer {service.token}"},
        body=request.read(),
        content_type=request.headers["content-type"],
    )


def _prediction_figures(service: Service, client: httpx.Client, job_id: str) -> dict[str, Any]:
    from cnnlab.engine import checkpoints as checkpoint
    from cnnlab.engine.predict import Predictor

    rng = np.random.default_rng(0)
    one = [rng.integers(0, 256, (28, 28)).tolist()]
    batch = [rng.integers(0, 256, (28, 28)).tolist() for _ in range(64)]
    pngs = [("files", (f"{i}.png", _png(np.asarray(img, dtype=np.uint8)), "image/png"))
            for i, img in enumerate(batch)]  # fmt: skip

    registered = client.post("/v1/models", json={"name": MODEL_NAME, "job_id": job_id})
    if registered.status_code != 201:
        raise RunFailed(f"POST /v1/models answered {registered.status_code}: {registered.text}")
    routes = {"": f"/v1/jobs/{job_id}/predict", "model_": f"/v1/models/{MODEL_NAME}/predict"}

    def timed(path: str, n: int, **content: Any) -> list[float]:
        return load.latencies(service.url, _predict_request(service, path, **content), n)

    # The two routes alternate, so that a burst of other load on the machine hits both alike.
    http: dict[str, dict[str, list[float]]] = {prefix: {} for prefix in routes}
    for case, n, content in (
        ("one", 300, {"json": {"instances": one}}),
        ("batch", 40, {"json": {"instances": batch}}),
        ("png_batch", 40, {"files": pngs}),
    ):
        for prefix, path in routes.items():
            http[prefix][case] = timed(path, n, **content)

    ckpt = checkpoint.loads(client.get(f"/v1/jobs/{job_id}/checkpoint").content)
    predictor = Predictor(ckpt)
    local_one = _timed(lambda: predictor.predict_arrays(one), 300)
    local_batch = _timed(lambda: predictor.predict_arrays(batch), 40)
    out = {
        "in_process_predict_p50_ms": 1000 * _percentile(local_one, 50),
        "in_process_images_per_second": 64 / statistics.median(local_batch),
    }
    for prefix, found in http.items():
        out.update(
            {
                f"{prefix}predict_p50_ms": 1000 * _percentile(found["one"], 50),
                f"{prefix}predict_p99_ms": 1000 * _percentile(found["one"], 99),
                f"{prefix}predict_images_per_second": 64 / statistics.median(found["batch"]),
                f"{prefix}predict_png_images_per_second": 64
                / statistics.median(found["png_batch"]),
            }
        )
    return out


def _requests_per_second(service: Service, path: str, token: bool) -> float:
    headers = {"Authorization": f"Bearer {service.token}"} if token else {}
    return load.requests_per_second(service.url, load.build(service.url, path, headers=headers))


def _start_latencies(client: httpx.Client, samples: int) -> list[float]:
    """Server-side delay from the job row's creation to its claim by the waiting worker."""
    out = []
    for _ in range(samples):
        job_id = client.post("/v1/jobs", json=START_SPEC).json()["id"]
        job = _wait_status(client, job_id, {"running", *ENDED_NAMES}, 120)
        if job["started_at"] is None:
            raise RunFailed(f"job {job_id} ended {job['status']} without starting: {job}")
        created = datetime.fromisoformat(job["created_at"])
        claimed = datetime.fromisoformat(job["started_at"])
        out.append((claimed - created).total_seconds())
        client.post(f"/v1/jobs/{job_id}/cancel")
        _wait_status(client, job_id, ENDED_NAMES, 120)
        time.sleep(0.3)  # the worker is idle and waiting again
    return out


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "service", "targets": TARGETS}
    redis = _redis_up()
    with running_stack(REDIS_URL if redis else None) as service, service.client() as client:
        print("  service: training a Fashion-MNIST model through a job...", flush=True)
        job = client.post("/v1/jobs", json=MODEL_SPEC)
        if job.status_code != 201:
            raise RunFailed(f"submit answered {job.status_code}: {job.text[:300]}")
        job_id = job.json()["id"]
        done = _wait_status(client, job_id, ENDED_NAMES, 600)
        if done["status"] != "succeeded":
            raise RunFailed(f"the model job ended {done['status']}: {done.get('error')}")
        result["model_test_accuracy"] = done["test_accuracy"]
        print("  service: predictions...", flush=True)
        result.update(_prediction_figures(service, client, job_id))
        print("  service: requests/s...", flush=True)
        result["get_job_requests_per_second"] = _requests_per_second(
            service, f"/v1/jobs/{job_id}", token=True
        )
        result["healthz_requests_per_second"] = _requests_per_second(
            service, "/healthz", token=False
        )
        print("  service: submit → running...", flush=True)
        starts = _start_latencies(client, 12)
        broker = "redis" if redis else "embedded"
        result[f"submit_to_running_{broker}_ms"] = [1000 * s for s in starts]
        result["submit_to_running_p50_ms"] = 1000 * statistics.median(starts)
        result["submit_to_running_broker"] = broker
    if redis:
        with running_stack(None) as service, service.client() as client:
            starts = _start_latencies(client, 8)
            result["submit_to_running_embedded_ms"] = [1000 * s for s in starts]
            result["submit_to_running_embedded_p50_ms"] = 1000 * statistics.median(starts)
    with postgres_database() as database:
        if database is not None:
            print("  service: requests/s on PostgreSQL...", flush=True)
            result.update(_postgres_figures(REDIS_URL if redis else None, database))
    return result


def _postgres_figures(broker: str | None, database: str) -> dict[str, float]:
    """``GET /v1/jobs/{id}`` requests/s with the production store (the job: one cancelled at
    once; a read costs the same whatever the job's state)."""
    with running_stack(broker, database) as service, service.client() as client:
        job_id = client.post("/v1/jobs", json=START_SPEC).json()["id"]
        client.post(f"/v1/jobs/{job_id}/cancel")
        _wait_status(client, job_id, ENDED_NAMES, 120)
        return {
            "get_job_postgres_requests_per_second": _requests_per_second(
                service, f"/v1/jobs/{job_id}", token=True
            )
        }


def _row(name: str, value: float, unit: str, against: str, target: str) -> None:
    print(f"  {name:<34} {value:>9.1f} {unit:<9} {against:<42} target {target}")


def report(r: dict[str, Any]) -> None:
    print(f"service (model test accuracy {r['model_test_accuracy']:.3f}):")
    _row(
        "predict 1 image, p50", r["predict_p50_ms"], "ms",
        f"in process {r['in_process_predict_p50_ms']:.2f} ms "
        f"(×{r['predict_p50_ms'] / r['in_process_predict_p50_ms']:.1f})",
        f"≤ {TARGETS['predict_p50_ms']:.0f} ms",
    )  # fmt: skip
    _row("predict 1 image, p99", r["predict_p99_ms"], "ms", "", "")
    local = r["in_process_images_per_second"]
    for name, key in (("JSON arrays", "predict_images_per_second"),
                      ("PNG files", "predict_png_images_per_second")):  # fmt: skip
        _row(
            f"predict, 64 {name} a request", r[key], "images/s",
            f"in process {local:.0f}/s (×{r[key] / local:.2f})",
            f"≥ {TARGETS['predict_images_per_second']:.0f}",
        )  # fmt: skip
    # By a registered model's name, against the job's own route (above) in the same run.
    by_job = (
        ("1 image, p50", "predict_p50_ms", "ms"),
        ("1 image, p99", "predict_p99_ms", "ms"),
        ("64 JSON arrays", "predict_images_per_second", "images/s"),
        ("64 PNG files", "predict_png_images_per_second", "images/s"),
    )
    for name, key, unit in by_job:
        by_name = r.get(f"model_{key}")
        if by_name is not None:
            _row(
                f"by model name, {name}", by_name, unit,
                f"by job id {r[key]:.1f} (×{by_name / r[key]:.2f})", "",
            )  # fmt: skip
    ratio = r["get_job_requests_per_second"] / r["healthz_requests_per_second"]
    _row(
        "GET /v1/jobs/{id}", r["get_job_requests_per_second"], "req/s",
        f"GET /healthz {r['healthz_requests_per_second']:.0f}/s (×{ratio:.2f})",
        f"≥ {TARGETS['get_job_requests_per_second']:.0f}",
    )  # fmt: skip
    postgres = r.get("get_job_postgres_requests_per_second")
    if postgres is not None:
        _row(
            "GET /v1/jobs/{id}, PostgreSQL", postgres, "req/s",
            f"on SQLite (×{postgres / r['get_job_requests_per_second']:.2f})",
            f"≥ {TARGETS['get_job_requests_per_second']:.0f}",
        )  # fmt: skip
    other = r.get("submit_to_running_embedded_p50_ms")
    _row(
        f"submit → running, p50 ({r['submit_to_running_broker']})",
        r["submit_to_running_p50_ms"], "ms",
        f"embedded broker {other:.0f} ms" if other is not None else "",
        f"≤ {TARGETS['submit_to_running_p50_ms']:.0f} ms",
    )  # fmt: skip
