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
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.reference import DEBIAN_FASHION_MNIST, TRAIN_SIZE, VAL_SIZE, stage_fashion_mnist
from bench.runner import RunFailed, run_timed
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

GRID_EPOCHS = 2
GRID_LRS, GRID_BATCH_SIZES = [0.01, 0.1], [256, 512]
GRID = {"optimizer.lr": GRID_LRS, "batch_size": GRID_BATCH_SIZES}  # the notebook's grid
SAMPLED_TRIALS, SAMPLED_EPOCHS = 4, 4
SPACE = {"optimizer.lr": {"loguniform": [0.01, 0.3]}, "batch_size": {"choice": [256, 512]}}
ASHA = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
SEED = 0
# Issue 10's second comparison: random + ASHA against a grid over the same ranges, 4 epochs.
WIDE_EPOCHS, WIDE_BATCH, WIDE_TRIALS = 4, 512, 16
WIDE_GRID = {"optimizer.lr": [0.01, 0.03, 0.1, 0.3], "optimizer.momentum": [0.0, 0.3, 0.6, 0.9]}
WIDE_SPACE = {
    "optimizer.lr": {"loguniform": [0.01, 0.3]},
    "optimizer.momentum": {"uniform": [0.0, 0.9]},
}
# One rung (epoch 1; the next would be epoch 8): the best 1/8 there train all 4 epochs. With 16
# trials, 16 first epochs + 3 × (trials promoted) must stay ≤ 40% of the grid's 64.
WIDE_ASHA = {"name": "asha", "min_epochs": 1, "reduction_factor": 8}
WIDE_SEEDS = (SEED, 1)  # the ASHA search's sampler seeds, each measured against the same grid
PARTS = ("rows", "notebook", "asha")
SEARCH_TIMEOUT_S = 1800.0
# The service's environment for a benchmark: its load must not be answered 429.
SERVICE_ENV = {"PYTHONUNBUFFERED": "1", "CNNLAB_RATE_LIMIT_PER_MINUTE": "0"}


def base_spec(epochs: int) -> dict[str, Any]:
    return {"dataset": "fashion_mnist", "val_size": VAL_SIZE, "epochs": epochs}


def grid_body() -> dict[str, Any]:
    """The notebook's grid as a search: lr [0.01, 0.1] × batch size [256, 512], 2 epochs."""
    return {"base": base_spec(GRID_EPOCHS), "grid": GRID}


def sampled_body(pruner: dict[str, Any] | None) -> dict[str, Any]:
    """4 random trials over lr and batch size, 4 epochs each; the same trials whatever the
    pruner (the same seed)."""
    return {
        "base": base_spec(SAMPLED_EPOCHS),
        "space": SPACE,
        "sampler": "random",
        "num_trials": SAMPLED_TRIALS,
        "seed": SEED,
        "pruner": pruner,
    }


def wide_grid_body() -> dict[str, Any]:
    """16 points: lr 4 values × momentum 4 values, 4 epochs each."""
    return {"base": {**base_spec(WIDE_EPOCHS), "batch_size": WIDE_BATCH}, "grid": WIDE_GRID}


def wide_asha_body(seed: int = SEED) -> dict[str, Any]:
    """16 random trials over the grid's ranges, 4 epochs at most, pruned by ASHA."""
    return {
        "base": {**base_spec(WIDE_EPOCHS), "batch_size": WIDE_BATCH},
        "space": WIDE_SPACE,
        "sampler": "random",
        "num_trials": WIDE_TRIALS,
        "seed": seed,
        "pruner": WIDE_ASHA,
    }


def grid_points() -> list[tuple[float, int]]:
    """The notebook's grid as (lr, batch size) points, in the notebook's order."""
    return [(lr, bs) for lr in GRID_LRS for bs in GRID_BATCH_SIZES]


def train_spec(lr: float, batch_size: int) -> dict[str, Any]:
    """One point of the notebook's grid as a ``cnnlab train`` spec: what the search's trial for
    that point trains."""
    return {**base_spec(GRID_EPOCHS), "optimizer": {"lr": lr}, "batch_size": batch_size}


# (key, label, workers, body): the searches, in the order one repeat runs them.
CASES: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("grid_1_worker", "2×2 grid, 2 epochs, --workers 1", 1, grid_body()),
    ("grid_2_workers", "2×2 grid, 2 epochs, --workers 2", 2, grid_body()),
    ("sampled_2_workers", "4 random × 4 epochs, --workers 2", 2, sampled_body(None)),
    ("asha_2_workers", "the same with ASHA, --workers 2", 2, sampled_body(ASHA)),
)
# Each row's reference, measured in the same run.
AGAINST = {
    "grid_1_worker": "grid_1_worker",
    "grid_2_workers": "grid_1_worker",
    "sampled_2_workers": "sampled_2_workers",
    "asha_2_workers": "sampled_2_workers",
}


@dataclass
class SearchRun:
    """One search, as measured: wall seconds from its POST to its end, and what it found."""

    wall_seconds: float
    status: str
    best_val_accuracy: float | None
    test_accuracy: float | None
    trials: int
    trial_epochs: int  # epochs trained, over all trials
    pruned: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(search: dict[str, Any], wall_seconds: float) -> SearchRun:
    """A ended search (``GET /v1/searches/{id}``'s answer) as a :class:`SearchRun`."""
    trials = search["trials"]
    accuracies = [t["val_accuracy"] for t in trials if t.get("val_accuracy") is not None]
    return SearchRun(
        wall_seconds=wall_seconds,
        status=search["status"],
        best_val_accuracy=max(accuracies, default=None),
        test_accuracy=search.get("test_accuracy"),
        trials=len(trials),
        trial_epochs=sum(t.get("epoch") or 0 for t in trials),
        pruned=sum(t["status"] == "pruned" for t in trials),
    )


def fastest(runs: list[SearchRun]) -> SearchRun:
    """The repeat least disturbed by other load on the machine."""
    return min(runs, key=lambda r: r.wall_seconds)


def figures(runs: dict[str, list[SearchRun]]) -> dict[str, dict[str, Any]]:
    """Each case's fastest run, every wall time, and its speed-up over its reference (the
    reference's wall seconds over its own)."""
    best = {key: fastest(found) for key, found in runs.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, run in best.items():
        against = best.get(AGAINST.get(key, key), run)
        out[key] = {
            **run.to_dict(),
            "all_wall_seconds": [r.wall_seconds for r in runs[key]],
            "against": AGAINST.get(key, key),
            "speedup": against.wall_seconds / run.wall_seconds,
        }
    return out


def median_run(runs: list[SearchRun]) -> SearchRun:
    """The run with the median wall time (the lower one of an even count)."""
    ordered = sorted(runs, key=lambda r: r.wall_seconds)
    return ordered[(len(ordered) - 1) // 2]


def medians(runs: dict[str, list[SearchRun]], reference: str) -> dict[str, dict[str, Any]]:
    """Each side's median wall time (``statistics.median``), the accuracies of its median run,
    every wall time, and ``reference``'s speed-up over it: its median wall over the reference's
    (how many times longer it took than the reference)."""
    walls = {key: statistics.median(r.wall_seconds for r in found) for key, found in runs.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, found in runs.items():
        out[key] = {
            **median_run(found).to_dict(),
            "wall_seconds": walls[key],
            "all_wall_seconds": [r.wall_seconds for r in found],
            "speedup_of_reference": walls[key] / walls[reference],
        }
    return out


def asha_verdict(asha: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    """Issue 10's target: ASHA's best within 1 point of the grid's, on ≤ 40% of its epochs."""
    points = 100 * ((asha["best_val_accuracy"] or 0.0) - (grid["best_val_accuracy"] or 0.0))
    share = asha["trial_epochs"] / grid["trial_epochs"]
    return {
        "val_points_behind_grid": -points,
        "epochs_share": share,
        "wall_share": asha["wall_seconds"] / grid["wall_seconds"],
        "within_1_point": points >= -1.0,
        "within_40_percent_epochs": share <= 0.40,
    }


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
    from cnnlab.settings import Settings

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
    from worker.commands import default_workers

    return default_workers(os.cpu_count() or 1)


def _tag(i: int, repeat: int) -> str:
    return f" (run {i}/{repeat})" if repeat > 1 else ""


def _brief(run: SearchRun) -> str:
    return (
        f"{run.wall_seconds:.1f} s, {run.trial_epochs} trial-epochs, {run.pruned} pruned, "
        f"best val_accuracy {_fmt(run.best_val_accuracy)}"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(result: dict[str, Any]) -> None:
    if "searches" in result:
        _report_rows(result)
    if "notebook" in result:
        _report_notebook(result["notebook"], result["repeat"])
    if "asha" in result:
        _report_asha(result["asha"], result["repeat"])


def _median_of(repeat: int) -> str:
    return f", median of {repeat}" if repeat > 1 else ""


def _report_notebook(part: dict[str, Any], repeat: int) -> None:
    print()
    print(
        f"the notebook's 2×2 grid, {GRID_EPOCHS} epochs: cnnlab search (cnnlab serve, "
        f"{part['serve_workers']} workers) against the same trials run otherwise"
        f"{_median_of(repeat)}"
    )
    print(f"  {'':<38}{'wall s':>8}{'search faster':>15}{'best val':>10}{'test acc':>10}")
    for key, label in part["labels"].items():
        fig = part["sides"][key]
        print(
            f"  {label:<38}{fig['wall_seconds']:>8.1f}{fig['speedup_of_reference']:>14.2f}x"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )
    raw = statistics.median(part["notebook_way_wall_seconds_every_model_tested"])
    print(f"  (the notebook's way with every model tested, as bench.reference does: {raw:.1f} s)")


def _report_asha(part: dict[str, Any], repeat: int) -> None:
    print()
    print(
        f"random + ASHA against a grid, {WIDE_TRIALS} trials × {WIDE_EPOCHS} epochs, "
        f"cnnlab serve with {part['serve_workers']} workers{_median_of(repeat)}"
    )
    print(f"  {'':<36}{'wall s':>8}{'epochs':>8}{'pruned':>8}{'best val':>10}{'test acc':>10}")
    for key, label in part["labels"].items():
        fig = part["sides"][key]
        print(
            f"  {label:<36}{fig['wall_seconds']:>8.1f}{fig['trial_epochs']:>8}{fig['pruned']:>8}"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )
    pruner = (
        f"min_epochs {WIDE_ASHA['min_epochs']}, reduction_factor {WIDE_ASHA['reduction_factor']}"
    )
    print(f"  ASHA ({pruner}) against the grid:")
    for key, v in part["verdicts"].items():
        behind = v["val_points_behind_grid"]
        print(
            f"    {part['labels'][key]}: {abs(behind):.2f} points "
            f"{'behind' if behind > 0 else 'ahead of'} its best val "
            f"(target ≤ 1 behind: {'met' if v['within_1_point'] else 'missed'}), "
            f"{100 * v['epochs_share']:.0f}% of its trial-epochs "
            f"(target ≤ 40%: {'met' if v['within_40_percent_epochs'] else 'missed'}), "
            f"{100 * v['wall_share']:.0f}% of its wall time"
        )


def _report_rows(result: dict[str, Any]) -> None:
    best_of = f", best of {result['repeat']}" if result["repeat"] > 1 else ""
    print()
    images = f"{result['train_images']:,}"
    print(f"searches through cnnlab serve, Fashion-MNIST {images} training images{best_of}")
    print(
        f"  {'search':<34}{'wall s':>8}{'speed-up':>10}  {'against':<16}"
        f"{'epochs':>7}{'pruned':>7}{'best val':>10}{'test acc':>10}"
    )
    searches = result["searches"]
    for key, label in result["labels"].items():
        fig = searches[key]
        against = "-" if fig["against"] == key else fig["against"]
        print(
            f"  {label:<34}{fig['wall_seconds']:>8.1f}{fig['speedup']:>9.2f}x  {against:<16}"
            f"{fig['trial_epochs']:>7}{fig['pruned']:>7}"
            f"{_fmt(fig['best_val_accuracy']):>10}{_fmt(fig['test_accuracy']):>10}"
        )


def notebook_grid(data_dir: Path, epochs: int, device: str) -> None:
    """The notebook's grid written its way, in this one process: :mod:`bench.reference`'s loop
    for each point (its lr and batch size), one model after another, then a summary line naming
    the best and the seconds of the test passes the notebook would not run (bench.reference
    tests every model; the notebook tests the best)."""
    from bench import reference

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
