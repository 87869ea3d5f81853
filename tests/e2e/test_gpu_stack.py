"""``cnnlab serve`` on a machine with a GPU: it adds a GPU worker, ``device: cuda`` jobs train
there (one pool process pinned per GPU), ``auto`` jobs stay on the CPU workers, and cancelling
works the same. Skipped where no GPU is visible."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from cnnlab.testing.procs import Proc
from cnnlab.testing.stack import CNNLAB, ENDED, Stack, free_port, stack_env, started, wait_for_job
from tests.utils.datasets import write_mnist
from worker.process import visible_gpus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not visible_gpus(), reason="no GPU visible on this machine"),
]

SPEC = {"dataset": "mnist", "train_size": 5000, "val_size": 1000, "batch_size": 256, "epochs": 3}


@pytest.fixture(scope="module")
def gpu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("gpu-home")
    write_mnist(home / "data", n_train=6000, n_test=1000)
    port = free_port()
    serve = Proc([*CNNLAB, "serve", f"--port={port}"], home / "serve.log", stack_env(home))
    with started(Stack(f"http://127.0.0.1:{port}", stack_env(home), [serve])) as stack:
        serve.wait_for(r"gpu-\d+@\S+ ready\.", timeout=120)
        yield stack


@pytest.fixture
def carol(gpu_stack: Stack) -> Iterator[httpx.Client]:
    with gpu_stack.client("carol") as client:
        yield client


def _run(client: httpx.Client, spec: dict[str, object]) -> tuple[dict[str, object], float]:
    t0 = time.perf_counter()
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    job = wait_for_job(client, job_id, ENDED, timeout=300)
    return job, time.perf_counter() - t0


def test_cuda_and_auto_jobs_train_on_their_own_workers(
    gpu_stack: Stack, carol: httpx.Client, record_property: Callable[[str, object], None]
) -> None:
    on_gpu, gpu_s = _run(carol, {**SPEC, "device": "cuda"})
    assert on_gpu["status"] == "succeeded", (on_gpu, gpu_stack.logs())
    on_cpu, cpu_s = _run(carol, {**SPEC, "device": "auto"})
    assert on_cpu["status"] == "succeeded", (on_cpu, gpu_stack.logs())

    log = gpu_stack.procs[0].text()
    assert "torch threads, GPU 0" in log, "no pool process was pinned to GPU 0"
    assert "GPU none" in log, "the CPU worker saw a GPU"
    rates = {}
    for name, job in (("gpu", on_gpu), ("cpu", on_cpu)):
        metrics = carol.get(f"/v1/jobs/{job['id']}/metrics").json()
        assert [m["epoch"] for m in metrics] == [1, 2, 3]
        rates[name] = max(m["images_per_second"] for m in metrics)
        record_property(f"{name}_images_per_second", round(rates[name]))
    record_property("gpu_job_seconds", round(gpu_s, 2))
    record_property("cpu_job_seconds", round(cpu_s, 2))
    assert rates["gpu"] > rates["cpu"], rates

    instances = [[[0] * 28] * 28, [[255] * 28] * 28]
    answer = carol.post(f"/v1/jobs/{on_gpu['id']}/predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 2


def test_a_cuda_job_cancels_within_an_epoch(gpu_stack: Stack, carol: httpx.Client) -> None:
    spec = {**SPEC, "device": "cuda", "epochs": 500, "train_size": 5000}
    job_id = carol.post("/v1/jobs", json=spec).json()["id"]
    deadline = time.monotonic() + 120
    while not carol.get(f"/v1/jobs/{job_id}").json()["epoch"]:
        assert time.monotonic() < deadline, gpu_stack.logs()
        time.sleep(0.05)
    asked = time.monotonic()
    assert carol.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait_for_job(carol, job_id, ENDED, timeout=60)
    assert job["status"] == "cancelled"
    assert time.monotonic() - asked < 10
