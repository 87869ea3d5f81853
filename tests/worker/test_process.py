"""How a worker is laid out: pool size, torch threads, and a GPU per process."""

from __future__ import annotations

import os
import subprocess

import pytest

from cnnlab.settings import get_settings
from cnnlab.testing.procs import CNNLAB, REPO
from worker.process import plan_worker, worker_argv

CORES = os.cpu_count() or 1


def test_cpu_workers_default_to_a_process_per_core_with_the_cores_shared() -> None:
    plan = plan_worker(["cpu"])
    assert (plan.concurrency, plan.threads, plan.gpus) == (CORES, 1, ())
    assert plan_worker(["cpu"], 1).threads == CORES
    assert plan_worker(["cpu"], 1, threads=3).threads == 3


def test_gpu_workers_run_trials_per_gpu_processes_per_visible_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    plan = plan_worker(["gpu"])
    assert (plan.concurrency, plan.gpus) == (4, ("3", "5", "3", "5"))
    assert plan_worker(["cpu", "gpu"], 3).gpus == ("3", "5", "3")
    monkeypatch.setenv("CNNLAB_TRIALS_PER_GPU", "1")  # undone, settings cleared, after the test
    get_settings.cache_clear()
    assert plan_worker(["gpu"]).gpus == ("3", "5")


def test_bad_plans_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        plan_worker(["tpu"])
    with pytest.raises(ValueError, match="at least 1"):
        plan_worker(["cpu"], -1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError, match="visible GPU"):
        plan_worker(["gpu"])


def test_worker_arguments_name_the_queues_and_the_pool() -> None:
    argv = worker_argv(plan_worker(["cpu"], 2))
    assert argv[0] == "worker"
    assert "--queues=cpu" in argv and "--concurrency=2" in argv and "--pool=prefork" in argv


def test_the_worker_command_explains_a_missing_gpu() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [*CNNLAB, "worker", "--queues=gpu"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "needs a visible GPU" in out.stderr
