"""How much faster than four ``cnnlab train`` runs the notebook's grid could ever run as a search
on this machine: the ceiling the ``notebook`` search comparison is held against.

A search under ``make run`` trains its trials in warm worker processes, one trial per core at a
time. Whatever the service does, it cannot beat the same trials' training alone, two at once, in
warm processes: no process start, no imports, no dataset load, no database, no queue. Measured
in the same run, on the same warm tensor cache:

1. ``cnnlab train``: the grid's four trials as four processes one after another (each with all
   the cores' threads), whole-process wall time; what ``cnnlab train`` reports as training time
   (:attr:`FitResult.seconds`) beside it;
2. ``one at a time``: the four trials' :func:`cnnlab.engine.training.fit` in one warm process
   with all the cores' threads, timed around the calls (training with validation and the test pass);
3. ``two lanes``: the same four calls split over two warm processes with one thread each (one
   batch size 256 and one 512 trial per lane, as two workers take the grid's trials), started
   together behind a barrier; the wall time is the slower lane's.

``cnnlab train`` against ``two lanes`` is the most a two-worker search can gain over four
``cnnlab train`` runs here (the service's own costs only lower it); ``one at a time`` against
``two lanes`` is what running two trials at once gains on its own.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reference import DEBIAN_FASHION_MNIST, stage_fashion_mnist
from bench.search import _train_one_after_another, _warm_cache
from bench.search_bodies import grid_points, train_spec
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec
from cnnlab.threads import yield_idle_threads

LANES = 2


def _fit_all(
    home: str, data_dir: str, specs: list[dict[str, Any]], threads: int, barrier: Any, out: Any
) -> None:
    """A warm process: import torch, load the cache, wait for the other lanes, then train
    ``specs`` one after another; puts the seconds spent in :func:`fit`."""
    yield_idle_threads()
    import torch

    from cnnlab.datasets.loading import load_split
    from cnnlab.engine.training import fit

    torch.set_num_threads(threads)
    settings = Settings(home=Path(home), data_dir=Path(data_dir))
    load_split("fashion_mnist", train=True, settings=settings)  # warm, as a worker is
    barrier.wait()
    start = time.perf_counter()
    for spec in specs:
        fit(TrainSpec.model_validate(spec), settings=settings)
    out.put({"seconds": time.perf_counter() - start})


def _warm_processes(
    home: Path, data_dir: Path, lanes: list[list[dict[str, Any]]], threads: int
) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")  # no torch state shared with this process
    barrier, out = ctx.Barrier(len(lanes)), ctx.Queue()
    procs = [
        ctx.Process(target=_fit_all, args=(str(home), str(data_dir), s, threads, barrier, out))
        for s in lanes
    ]
    for p in procs:
        p.start()
    found = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a lane exited with status {p.exitcode}")
    return found


def run(source: Path = DEBIAN_FASHION_MNIST) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    specs = [train_spec(lr, bs) for lr, bs in grid_points()]
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-lanes-") as tmp:
        work = Path(tmp)
        data_dir = stage_fashion_mnist(work / "data", source)
        home = work / "home"
        _warm_cache(data_dir, home)
        env = {"CNNLAB_HOME": str(home), "CNNLAB_DATA_DIR": str(data_dir)}
        print("  lanes: four cnnlab train processes one after another...", flush=True)
        train = _train_one_after_another(work, env)
        print("  lanes: the four trials in one warm process...", flush=True)
        (one,) = _warm_processes(home, data_dir, [specs], cores)
        print(f"  lanes: the four trials in {LANES} warm processes, 1 thread each...", flush=True)
        by_batch = sorted(specs, key=lambda s: s["batch_size"])
        lanes = [by_batch[i::LANES] for i in range(LANES)]  # one 256 and one 512 trial per lane
        two = _warm_processes(home, data_dir, lanes, 1)
    slowest = max(lane["seconds"] for lane in two)
    return {
        "specs": specs,
        "cores": cores,
        "cnnlab_train_wall_seconds": train.wall_seconds,
        "cnnlab_train_best_val_accuracy": train.best_val_accuracy,
        "one_at_a_time_seconds": one["seconds"],
        "two_lanes_seconds": [lane["seconds"] for lane in two],
        "two_lanes_wall_seconds": slowest,
        "ceiling_against_cnnlab_train": train.wall_seconds / slowest,
        "two_at_once_gain": one["seconds"] / slowest,
        "startup_share_of_cnnlab_train": 1 - one["seconds"] / train.wall_seconds,
    }


def report(result: dict[str, Any]) -> None:
    print("\nThe notebook's grid: the most a two-worker search could gain (bench/lanes.py)")
    print(f"  4 × cnnlab train, one after another:   {result['cnnlab_train_wall_seconds']:7.1f} s")
    print(f"  the 4 fits in one warm process:        {result['one_at_a_time_seconds']:7.1f} s")
    lanes = ", ".join(f"{s:.1f}" for s in result["two_lanes_seconds"])
    print(
        f"  the 4 fits in 2 warm 1-thread lanes:   {result['two_lanes_wall_seconds']:7.1f} s"
        f" (lanes {lanes} s)"
    )
    print(
        f"  ceiling against cnnlab train: {result['ceiling_against_cnnlab_train']:.2f}×;"
        f" two trials at once alone: {result['two_at_once_gain']:.2f}×;"
        f" cnnlab train's time outside fit: {100 * result['startup_share_of_cnnlab_train']:.0f} %"
    )
