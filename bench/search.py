"""Search wall time through the real service: how fast ``cnnlab serve`` runs a search's trials.

Every search trains real Fashion-MNIST (50k training / 10k validation images, SGD) through a
``cnnlab serve`` stack (SQLite and the embedded broker, as ``make run`` starts it), timed from
``POST /v1/searches`` until the search has ended. Measured in the same run:

1. the notebook's 2×2 grid (lr × batch size, 2 epochs) with one worker process (``--workers 1``:
   trials one after another, each with all the cores' threads): the reference;
2. the same grid with ``--workers 2`` (two trials at once, the threads split between them);
3. a sampled search (random, a fixed seed: both draw the same trials) of 4 trials × 4 epochs
   with the ASHA pruner against the same search without it, on the ``--workers 2`` stack.

Each figure comes with the search's best validation accuracy (and its best trial's test
accuracy), so that speed is not bought with accuracy. The data are decoded into the tensor cache
once, before any stack starts, and every stack starts from that cache: each measures training,
not the first decode.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.reference import DEBIAN_FASHION_MNIST, TRAIN_SIZE, VAL_SIZE, stage_fashion_mnist
from bench.runner import RunFailed
from cnnlab.status import ENDED_NAMES
from tests.utils.procs import WORKER_READY, Proc
from tests.utils.stack import CNNLAB, Stack, create_token, free_port, stack_env, started, wait_until

GRID_EPOCHS = 2
GRID = {"optimizer.lr": [0.01, 0.1], "batch_size": [256, 512]}  # the notebook's grid
SAMPLED_TRIALS, SAMPLED_EPOCHS = 4, 4
SPACE = {"optimizer.lr": {"loguniform": [0.01, 0.3]}, "batch_size": {"choice": [256, 512]}}
ASHA = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
SEED = 0
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


@dataclass
class Service:
    stack: Stack
    token: str

    def client(self) -> httpx.Client:
        return self.stack.client_for(self.token, timeout=60)


@contextmanager
def serving(workers: int, work: Path, data_dir: Path, cache: Path) -> Iterator[Service]:
    """``cnnlab serve --workers K`` under a fresh home (its own SQLite and broker) that starts
    with the warm tensor ``cache``; yields once the API answers and every worker is ready."""
    home = Path(tempfile.mkdtemp(prefix=f"serve{workers}-", dir=work))
    shutil.copytree(cache, home / "cache")
    env = {**stack_env(home, **SERVICE_ENV), "CNNLAB_DATA_DIR": str(data_dir)}
    try:
        token = create_token(env, "bench")  # also applies the migrations
    except AssertionError as exc:
        raise RunFailed(f"cnnlab token create failed: {exc}") from exc
    port = free_port()
    serve = Proc([*CNNLAB, "serve", f"--port={port}", f"--workers={workers}"],
                 home / "serve.log", env)  # fmt: skip
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
    from cnnlab.data import load_split
    from cnnlab.settings import Settings

    settings = Settings(home=home, data_dir=data_dir)
    for train in (True, False):
        load_split("fashion_mnist", train=train, settings=settings)
    return settings.cache_dir


def run(repeat: int = 1, source: Path = DEBIAN_FASHION_MNIST) -> dict[str, Any]:
    runs: dict[str, list[SearchRun]] = {key: [] for key, *_ in CASES}
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-search-") as tmp:
        work = Path(tmp)
        data_dir = stage_fashion_mnist(work / "data", source)
        cache = _warm_cache(data_dir, work / "seed-home")
        for i in range(1, repeat + 1):
            tag = f" (run {i}/{repeat})" if repeat > 1 else ""
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
        "benchmark": "search",
        "repeat": repeat,
        "train_images": TRAIN_SIZE,
        "bodies": {key: body for key, _, _, body in CASES},
        "labels": {key: label for key, label, _, _ in CASES},
        "searches": figures(runs),
    }


def _brief(run: SearchRun) -> str:
    return (
        f"{run.wall_seconds:.1f} s, {run.trial_epochs} trial-epochs, {run.pruned} pruned, "
        f"best val_accuracy {_fmt(run.best_val_accuracy)}"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(result: dict[str, Any]) -> None:
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
