"""Search wall time through the real service: how fast ``cnnlab serve`` runs a search's trials.

Every search trains real Fashion-MNIST (50k training / 10k validation images, SGD) through a
``cnnlab serve`` stack (SQLite and the embedded broker, as ``make run`` starts it), timed from
``POST /v1/searches`` until the search has ended. Measured in the same run:

1. the notebook's 2×2 grid (lr × batch size, 2 epochs) with one worker process (``--workers 1``:
   trials one after another, each with all the cores' threads): the reference;
2. the same grid with ``--workers 2`` (two trials at once, the threads split between them);
3. a sampled search (random, a fixed seed: both draw the same trials) of 4 trials × 4 epochs
   with the ASHA pruner against the same search without it, on the ``--workers 2`` stack.

Two more comparisons (issue 10's), each the median of ``--repeat`` runs of every side:

4. ``notebook``: the notebook's grid as a search under ``make run``'s defaults (``cnnlab serve``
   with its default worker count) against the same four trials as four ``cnnlab train``
   processes one after another, and against the grid written the notebook's way: one process,
   :mod:`bench.reference`'s loop (torchvision dataset, ``ToTensor``, ``DataLoader(num_workers=2)``)
   for the four models one after another, then the best tested;
5. ``asha``: random sampling with ASHA (``min_epochs`` 1, ``reduction_factor`` 8: one rung, at
   epoch 1, past which the best eighth go on to all 4 epochs), 16 trials × 4 epochs over lr
   (loguniform) × momentum (uniform), against the 16-point grid over the same ranges (4 × 4
   values), all under ``make run``'s defaults: the best validation accuracy, trial-epochs and
   wall time of each. The ASHA search runs twice, with sampler seeds 0 and 1 (other trials, and
   another order of arrival at the rung), each judged against the grid of the same run: Optuna's
   asynchronous rule promotes a trial that is the best so far at its rung while fewer than
   ``reduction_factor`` trials have reached it, so what ASHA spends depends on the order in which
   good trials come, and one seed alone would say little.

``--only rows|notebook|asha`` runs one part (``rows``: 1–3). Each figure comes with the best
validation accuracy (and its best trial's test accuracy), so that speed is not bought with
accuracy. The data are decoded into the tensor cache once, before anything is timed, and every
stack and ``cnnlab train`` process starts from that cache: each measures training, not the first
decode (the notebook's way has no cache: torchvision reads the IDX files each time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import reference
from bench.reference import DEBIAN_FASHION_MNIST, TRAIN_SIZE, stage_fashion_mnist
from bench.runner import RunFailed, run_timed
from bench.search_bodies import (
    CASES,
    GRID_EPOCHS,
    PARTS,
    SEARCH_TIMEOUT_S,
    SEED,
    SERVICE_ENV,
    WIDE_EPOCHS,
    WIDE_SEEDS,
    grid_body,
    grid_points,
    train_spec,
    wide_asha_body,
    wide_grid_body,
)
from bench.search_report import _brief, _tag
from bench.search_stats import SearchRun, asha_verdict, figures, medians, summarize
from cnnlab.settings import Settings
from cnnlab.status import ENDED_NAMES
from cnnlab.testing.procs import WORKER_READY, Proc
from cnnlab.testing.stack import (
    CNNLAB,
    Stack,
    create_token,
    free_port,
    stack_env,
    started,
    wait_until,
)
from worker.commands import default_workers


@dataclass
class Service:
    stack: Stack
    token: str

    def client(self) -> httpx.Client:
        return self.stack.client_for(self.token, timeout=60)


@contextmanager
def serving(workers: int | None, work: Path, data_dir: Path, cache: Path) -> Iterator[Service]:
    """``cnnlab serve --workers K`` (None: without the flag, as ``make run`` starts it) under a
    fresh home (its own SQLite and broker) that starts with the warm tensor ``cache``; yields
    once the API answers and every worker is ready."""
    flags = [] if workers is None else [f"--workers={workers}"]
    if workers is None:
        workers = _default_workers()
    home = Path(tempfile.mkdtemp(prefix=f"serve{workers}-", dir=work))
    shutil.copytree(cache, home / "cache")
    env = {**stack_env(home, **SERVICE_ENV), "CNNLAB_DATA_DIR": str(data_dir)}
    try:
        token = create_token(env, "bench")  # also applies the migrations
    except AssertionError as exc:
        raise RunFailed(f"cnnlab token create failed: {exc}") from exc
    port = free_port()
    serve = Proc([*CNNLAB, "serve", f"--port={port}", *flags], home / "serve.log", env)
    stack = Stack(f"http://127.0.0.1:{port}", env, [serve])
    try:
        with started(stack, timeout=120):
            wait_until(
                lambda: len(WORKER_READY.findall(serve.text())) >= workers,
                120,
                f"{workers} worker(s) to be ready",
                poll=0.2,
            )
            yield Service(stack, token)
    except AssertionError as exc:
        raise RunFailed(f"{exc}\n{stack.logs()}") from exc
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_search(service: Service, body: dict[str, Any]) -> SearchRun:
    """POST the search, poll it until it has ended; the wall time runs from the POST."""
    with service.client() as client:
        start = time.perf_counter()
        answer = client.post("/v1/searches", json=body)
        if answer.status_code != 201:
            raise RunFailed(f"POST /v1/searches answered {answer.status_code}: {answer.text[:500]}")
        search_id = answer.json()["id"]
        deadline = start + SEARCH_TIMEOUT_S
        while True:
            search = client.get(f"/v1/searches/{search_id}").raise_for_status().json()
            if search["status"] in ENDED_NAMES:
                wall = time.perf_counter() - start
                break
            if time.perf_counter() > deadline:
                raise RunFailed(f"search {search_id} still {search['status']} after a timeout")
            time.sleep(0.1)
    if search["status"] != "succeeded":
        raise RunFailed(f"search {search_id} ended {search['status']}: {search['trials']}")
    return summarize(search, wall)


def _warm_cache(data_dir: Path, home: Path) -> Path:
    """Decode Fashion-MNIST into ``home``'s tensor cache, as a service's first job would."""
    from cnnlab.datasets.loading import load_split

    settings = Settings(home=home, data_dir=data_dir)
    for train in (True, False):
        load_split("fashion_mnist", train=train, settings=settings)
    return settings.cache_dir


def run(
    repeat: int = 1, source: Path = DEBIAN_FASHION_MNIST, only: tuple[str, ...] = PARTS
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "search",
        "repeat": repeat,
        "parts": list(only),
        "train_images": TRAIN_SIZE,
    }
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-search-") as tmp:
        work = Path(tmp)
        data_dir = stage_fashion_mnist(work / "data", source)
        cache = _warm_cache(data_dir, work / "seed-home")
        if "rows" in only:
            result.update(_rows(repeat, work, data_dir, cache))
        if "notebook" in only:
            result["notebook"] = _notebook(repeat, work, data_dir, cache)
        if "asha" in only:
            result["asha"] = _asha(repeat, work, data_dir, cache)
    return result


def _rows(repeat: int, work: Path, data_dir: Path, cache: Path) -> dict[str, Any]:
    runs: dict[str, list[SearchRun]] = {key: [] for key, *_ in CASES}
    for i in range(1, repeat + 1):
        tag = _tag(i, repeat)
        # One stack per worker count, in the cases' order; within it, the cases in order.
        for workers in dict.fromkeys(w for _, _, w, _ in CASES):
            with serving(workers, work, data_dir, cache) as service:
                for key, label, w, body in CASES:
                    if w != workers:
                        continue
                    print(f"  search: {label}{tag}...", flush=True)
                    found = run_search(service, body)
                    print(f"    {_brief(found)}", flush=True)
                    runs[key].append(found)
    return {
        "bodies": {key: body for key, _, _, body in CASES},
        "labels": {key: label for key, label, _, _ in CASES},
        "searches": figures(runs),
    }


NOTEBOOK_LABELS = {
    "search": "cnnlab search, make run defaults",
    "cnnlab_train": "4 × cnnlab train, one after another",
    "notebook_way": "notebook's way, one process",
}


def _notebook(repeat: int, work: Path, data_dir: Path, cache: Path) -> dict[str, Any]:
    """The notebook's grid three ways, alternated within each repeat; medians."""
    runs: dict[str, list[SearchRun]] = {key: [] for key in NOTEBOOK_LABELS}
    raw_notebook_walls: list[float] = []
    train_home = work / "train-home"
    shutil.copytree(cache, train_home / "cache")
    env = {"CNNLAB_HOME": str(train_home), "CNNLAB_DATA_DIR": str(data_dir)}
    for i in range(1, repeat + 1):
        tag = _tag(i, repeat)
        print(f"  notebook grid: {NOTEBOOK_LABELS['search']}{tag}...", flush=True)
        with serving(None, work, data_dir, cache) as service:
            found = run_search(service, grid_body())
        print(f"    {_brief(found)}", flush=True)
        runs["search"].append(found)

        print(f"  notebook grid: {NOTEBOOK_LABELS['cnnlab_train']}{tag}...", flush=True)
        found = _train_one_after_another(work, env)
        print(f"    {_brief(found)}", flush=True)
        runs["cnnlab_train"].append(found)

        print(f"  notebook grid: {NOTEBOOK_LABELS['notebook_way']}{tag}...", flush=True)
        found, raw = _notebook_way(data_dir)
        print(f"    {_brief(found)} ({raw:.1f} s with every model tested)", flush=True)
        runs["notebook_way"].append(found)
        raw_notebook_walls.append(raw)
    return {
        "labels": NOTEBOOK_LABELS,
        "body": grid_body(),
        "train_specs": [train_spec(lr, bs) for lr, bs in grid_points()],
        "serve_workers": _default_workers(),
        "sides": medians(runs, "search"),
        "notebook_way_wall_seconds_every_model_tested": raw_notebook_walls,
    }


def _train_one_after_another(work: Path, env: dict[str, str]) -> SearchRun:
    """The grid's four trials as four ``cnnlab train`` processes, one after another; the wall
    time is their sum, the test accuracy the best one's."""
    wall, epochs, summaries = 0.0, 0, []
    for n, (lr, bs) in enumerate(grid_points()):
        spec_path = work / f"train-{n}.json"
        spec_path.write_text(json.dumps(train_spec(lr, bs)))
        cmd = [sys.executable, "-m", "cnnlab", "train", str(spec_path), "--json"]
        done = run_timed(f"cnnlab train lr {lr} batch {bs}", cmd, env)
        wall += done.wall_seconds
        epochs += len(done.epochs)
        summaries.append(done.summary)
    best = max(summaries, key=lambda s: s["best_val_accuracy"])
    return SearchRun(
        wall, "succeeded", best["best_val_accuracy"], best["test_accuracy"], 4, epochs, 0
    )


def _notebook_way(data_dir: Path) -> tuple[SearchRun, float]:
    """The grid written the notebook's way, in its own timed process (``python -m bench.search
    notebook-grid``). :mod:`bench.reference`'s loop tests every model it trains, where the
    notebook tests only the best: the wall time returned first leaves out the other three test
    passes (timed in that process); the second is the process's whole wall time."""
    cmd = [sys.executable, "-m", "bench.search", "notebook-grid", str(data_dir)]
    cmd += ["--epochs", str(GRID_EPOCHS)]
    done = run_timed("notebook way", cmd, {})
    summary = done.summary
    wall = done.wall_seconds - summary["unneeded_test_seconds"]
    found = SearchRun(
        wall,
        "succeeded",
        summary["best_val_accuracy"],
        summary["test_accuracy"],
        len(summary["grid"]),
        len(done.epochs),
        0,
    )
    return found, done.wall_seconds


def _asha_key(seed: int) -> str:
    return "asha" if seed == SEED else f"asha_seed{seed}"


WIDE_LABELS = {
    "grid": "16-point grid (lr 4 × momentum 4)",
    **{_asha_key(seed): f"16 random trials, ASHA, seed {seed}" for seed in WIDE_SEEDS},
}


def _asha(repeat: int, work: Path, data_dir: Path, cache: Path) -> dict[str, Any]:
    """Random + ASHA (each of :data:`WIDE_SEEDS`) against the 16-point grid, 4 epochs each, under
    ``make run``'s defaults, one stack for all of a repeat's searches."""
    runs: dict[str, list[SearchRun]] = {key: [] for key in WIDE_LABELS}
    bodies = {"grid": wide_grid_body()}
    bodies.update({_asha_key(seed): wide_asha_body(seed) for seed in WIDE_SEEDS})
    for i in range(1, repeat + 1):
        tag = _tag(i, repeat)
        with serving(None, work, data_dir, cache) as service:
            for key, label in WIDE_LABELS.items():
                print(f"  search: {label}, {WIDE_EPOCHS} epochs{tag}...", flush=True)
                found = run_search(service, bodies[key])
                print(f"    {_brief(found)}", flush=True)
                runs[key].append(found)
    sides = medians(runs, "grid")
    return {
        "labels": WIDE_LABELS,
        "bodies": bodies,
        "serve_workers": _default_workers(),
        "sides": sides,
        "verdicts": {
            key: asha_verdict(sides[key], sides["grid"]) for key in bodies if key != "grid"
        },
    }


def _default_workers() -> int:
    return default_workers(os.cpu_count() or 1)


def notebook_grid(data_dir: Path, epochs: int, device: str) -> None:
    """The notebook's grid written its way, in this one process: :mod:`bench.reference`'s loop
    for each point (its lr and batch size), one model after another, then a summary line naming
    the best and the seconds of the test passes the notebook would not run (bench.reference
    tests every model; the notebook tests the best)."""
    records: list[dict[str, Any]] = []
    emit = reference._emit

    def keep(record: dict[str, object]) -> None:
        records.append(dict(record))
        emit(record)

    reference._emit = keep
    models = []
    for lr, batch_size in grid_points():
        reference.LEARNING_RATE, reference.BATCH_SIZE = lr, batch_size
        start = len(records)
        reference.run(data_dir, epochs, device)
        *per_epoch, summary = records[start:]
        models.append(
            {
                "lr": lr,
                "batch_size": batch_size,
                "best_val_accuracy": summary["best_val_accuracy"],
                "test_accuracy": summary["test_accuracy"],
                "test_seconds": summary["seconds"] - sum(e["seconds"] for e in per_epoch),
            }
        )
    best = max(models, key=lambda m: m["best_val_accuracy"])
    emit(
        {
            "grid": models,
            "best_val_accuracy": best["best_val_accuracy"],
            "test_accuracy": best["test_accuracy"],
            "unneeded_test_seconds": sum(m["test_seconds"] for m in models if m is not best),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search")
    parser.add_argument("what", choices=["notebook-grid"])
    parser.add_argument("data_dir", type=Path, help="holds FashionMNIST/raw (torchvision layout)")
    parser.add_argument("--epochs", type=int, default=GRID_EPOCHS)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    notebook_grid(stage_fashion_mnist(args.data_dir), args.epochs, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
