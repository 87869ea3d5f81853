"""Running one Celery worker: queues, pool size, and what each pool process sets up after fork.

CPU workers run one pool process per core by default, each with ``cores // processes`` torch
threads, and see no GPU (so a job with ``device: auto`` trains on the CPU it was queued for).
GPU workers (``--queues gpu``) run ``CNNLAB_TRIALS_PER_GPU`` pool processes per visible GPU (2 by
default: one small trial leaves most of a GPU idle), spread round-robin; each process pins itself to
its device through ``CUDA_VISIBLE_DEVICES`` before anything touches CUDA. The parent process
never imports torch, so nothing CUDA exists before the fork; it sweeps for abandoned jobs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from billiard.process import current_process
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from cnnlab.settings import get_settings
from cnnlab.store.db import dispose_engine
from cnnlab.threads import yield_idle_threads
from worker.app import GPU_QUEUE, QUEUES, get_celery
from worker.heartbeat import Heartbeat, gpu_names

logger = logging.getLogger(__name__)

_COUNT_GPUS = "import torch; print(torch.cuda.device_count())"


@dataclass(frozen=True)
class WorkerPlan:
    queues: tuple[str, ...]
    concurrency: int
    threads: int
    gpus: tuple[str, ...]  # device ids, one per pool process; empty on CPU workers


def visible_gpus() -> tuple[str, ...]:
    """Device ids this machine offers, counted in a child so this process never loads CUDA."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(d.strip() for d in listed.split(",") if d.strip())
    if not (os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi")):
        return ()
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_GPUS], capture_output=True, text=True, timeout=120
    )
    count = int(out.stdout.strip() or 0) if out.returncode == 0 else 0
    return tuple(str(i) for i in range(count))


def plan_worker(
    queues: Sequence[str], concurrency: int | None = None, threads: int | None = None
) -> WorkerPlan:
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown or not queues:
        raise ValueError(f"unknown queue(s) {unknown}; choose from {list(QUEUES)}")
    cores = os.cpu_count() or 1
    gpus: tuple[str, ...] = ()
    if GPU_QUEUE in queues:
        gpus = visible_gpus()
        if not gpus:
            raise ValueError("the gpu queue needs a visible GPU and none was found")
        concurrency = concurrency or len(gpus) * get_settings().trials_per_gpu
        # Several processes per device share the devices round-robin.
        gpus = tuple(gpus[i % len(gpus)] for i in range(concurrency))
    concurrency = concurrency or cores
    if concurrency < 1 or (threads is not None and threads < 1):
        raise ValueError("concurrency and threads must be at least 1")
    threads = threads or max(1, cores // concurrency)
    return WorkerPlan(tuple(queues), concurrency, threads, gpus)


def _pool_index() -> int:
    return int(getattr(current_process(), "index", 0) or 0)


def _connect_process_hooks(plan: WorkerPlan) -> None:
    def init_process(**_: object) -> None:
        # Before torch is used here: the device a process sees is fixed at CUDA init. (The
        # training code is loaded: the parent imported the task modules before forking.)
        if plan.gpus:
            os.environ["CUDA_VISIBLE_DEVICES"] = plan.gpus[_pool_index() % len(plan.gpus)]
        # A connection pool inherited through fork must not be shared with the parent.
        dispose_engine()
        import torch

        torch.set_num_threads(plan.threads)
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or "none"
        logger.info("pool process ready: %d torch threads, GPU %s", plan.threads, gpu)

    worker_process_init.connect(init_process, weak=False)


def _connect_sweeper() -> None:
    """Sweep for abandoned jobs from the main process (pool processes are busy training)."""
    from worker.sweeper import Sweeper

    sweeper = Sweeper()

    def start(**_: object) -> None:
        sweeper.start()
        logger.info("sweeping for abandoned jobs every %.1fs", sweeper.config.sweep_interval)

    def stop(**_: object) -> None:
        sweeper.stop()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


def _connect_webhooks() -> None:
    """Deliver webhooks from the main process too (a thread of its own: see worker.webhooks)."""
    from worker.webhooks import WebhookDispatcher

    dispatcher = WebhookDispatcher()

    def start(**_: object) -> None:
        dispatcher.start()

    def stop(**_: object) -> None:
        dispatcher.stop()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


def _connect_heartbeat(plan: WorkerPlan) -> None:
    """Record this worker in ``workers`` from the main process while it runs (see
    :mod:`worker.heartbeat`); its first beat is written before Celery says it is ready."""
    heartbeat = Heartbeat(plan.queues, gpu_names(sorted(set(plan.gpus))))

    def start(**_: object) -> None:
        heartbeat.start()
        logger.info("heartbeat as %s every %.1fs", heartbeat.id, heartbeat.interval)

    def stop(**_: object) -> None:
        heartbeat.stop()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


def run_worker(
    queues: Sequence[str],
    concurrency: int | None = None,
    *,
    threads: int | None = None,
    loglevel: str = "INFO",
    name: str | None = None,
) -> int:
    """Run a Celery worker in this process until it is stopped; returns its exit code."""
    plan = plan_worker(queues, concurrency, threads)
    yield_idle_threads()  # before any pool process loads torch; they inherit the environment
    if not plan.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    _connect_process_hooks(plan)
    _connect_sweeper()
    _connect_webhooks()
    _connect_heartbeat(plan)
    app = get_celery()
    return int(app.start(worker_argv(plan, name=name, loglevel=loglevel)) or 0)


def worker_argv(plan: WorkerPlan, *, name: str | None = None, loglevel: str = "INFO") -> list[str]:
    """The ``celery worker`` arguments for a plan (gossip, mingle and heartbeats are off: job
    state lives in the database, and the embedded broker has no broadcast)."""
    node = name or f"{'+'.join(plan.queues)}-{os.getpid()}@%h"
    return [
        "worker",
        f"--queues={','.join(plan.queues)}",
        f"--concurrency={plan.concurrency}",
        "--pool=prefork",
        f"--hostname={node}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
