"""``cnnlab serve``, ``cnnlab api`` and ``cnnlab worker``: the service's processes.

``serve`` migrates the database, then supervises ``cnnlab worker`` and ``cnnlab api`` child
processes: the embedded stack by default, any stack the settings name otherwise. These commands
join ``cnnlab``'s command line through the ``cnnlab.commands`` entry point (pyproject.toml), so
the core package never imports the service's. When it is
interrupted, or one child exits, it stops the rest: a polite signal first (a worker finishes
its current job), then a harder one after a grace period. While it runs it also sweeps for
abandoned jobs (see :mod:`worker.sweeper`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from cnnlab.threads import yield_idle_threads

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Seconds a stopping worker may spend finishing its job before it is cold-stopped, then killed.
STOP_GRACE_S = 10.0
STOP_HARD_S = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the API and workers (embedded by default)")
    _add_http_args(serve)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="K",
        help="worker processes, the cores' threads split between them (default: one per two "
        "cores, at least two where there are two: a search's trials run side by side)",
    )
    serve.set_defaults(func=cmd_serve)

    api = subparsers.add_parser("api", help="run the HTTP API only")
    _add_http_args(api)
    api.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxies whose X-Forwarded-For gives the client's address (comma-separated; "
        "default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    api.set_defaults(func=cmd_api)

    worker = subparsers.add_parser("worker", help="run one Celery worker")
    worker.add_argument("--queues", default="cpu", help="comma-separated: cpu, gpu (default cpu)")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="pool processes (default: one per core on cpu, one per GPU on gpu)",
    )
    worker.add_argument(
        "--threads", type=int, default=None, metavar="T", help="torch threads per process"
    )
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)


def _add_http_args(parser: argparse.ArgumentParser) -> None:
    default_port = int(os.environ.get("PORT", DEFAULT_PORT))
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--host", default=DEFAULT_HOST)


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.process import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    try:
        return run_worker(queues, args.concurrency, threads=args.threads, loglevel=args.loglevel)
    except ValueError as exc:
        print(f"cnnlab worker: {exc}", file=sys.stderr)
        return 2


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from cnnlab.store.migrate import upgrade

    upgrade()
    # Open event streams would hold a graceful shutdown for as long as their jobs run.
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=3,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    return 0


def default_workers(cores: int) -> int:
    """``serve``'s CPU worker processes: one per two cores, and two on a 2-core machine.

    Measured on 2 cores (``make bench BENCH_ARGS=search``): the notebook's 2×2 grid ran ~1.3×
    faster as two single-threaded trials at a time than as one two-threaded trial at a time,
    while a lone job on one thread lost little there (an epoch took 7–8 s on one thread or two).
    Past 2 cores, two threads per process keep a lone job off a single core."""
    return max(1, min(cores, max(2, cores // 2)))


def cmd_serve(args: argparse.Namespace) -> int:
    from cnnlab.store.migrate import upgrade
    from worker.process import visible_gpus

    cores = os.cpu_count() or 1
    workers = default_workers(cores) if args.workers is None else args.workers
    if workers < 1:
        print("cnnlab serve: --workers must be at least 1", file=sys.stderr)
        return 2
    upgrade()
    yield_idle_threads()  # in this environment, which the workers inherit
    me = [sys.executable, "-m", "cnnlab"]
    threads = max(1, cores // workers)
    commands = [
        [*me, "worker", "--queues=cpu", "--concurrency=1", f"--threads={threads}"]
        for _ in range(workers)
    ]
    if visible_gpus():
        commands.append([*me, "worker", "--queues=gpu"])
    commands.append([*me, "api", f"--host={args.host}", f"--port={args.port}"])
    print(f"cnnlab: serving on http://{args.host}:{args.port} with {workers} worker(s)")
    return _supervise(commands)


class _Stop(Exception):
    pass


def _die_with_parent() -> None:
    """Runs in each child before exec: on Linux, SIGTERM it if ``serve`` dies without stopping it
    (children run in their own process groups, so nothing else would reach them)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    # Its own process group: a terminal's Ctrl-C reaches only ``serve``, which stops the children
    # in order, and a worker's pool processes can be killed with it as a last resort.
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(command, start_new_session=True, preexec_fn=preexec)


def _supervise(commands: Sequence[list[str]]) -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        children.extend(_spawn(c) for c in commands)
        sweep = _Sweeps()
        while True:
            for child, command in zip(children, commands, strict=True):
                if child.poll() is not None:
                    print(f"cnnlab: {command[3]} exited ({child.returncode}); stopping")
                    code = child.returncode or 1
                    raise _Stop
            sweep.maybe()
            time.sleep(0.2)
    except _Stop:
        pass
    finally:
        # Stopping is not interrupted by another Ctrl-C: it must not leave orphans behind.
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        print(f"cnnlab: stopping (running jobs get up to {STOP_GRACE_S:.0f}s to finish)")
        _stop_all(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code


class _Sweeps:
    """``serve`` sweeps for abandoned jobs too, so they are recovered while every worker is down
    or restarting (in this thread: ``serve`` forks its children with no other thread running).
    It delivers webhooks too, from a daemon thread started here, after the children: a slow
    receiver must not hold this loop (see :mod:`worker.webhooks`)."""

    def __init__(self) -> None:
        from cnnlab.lifecycle import LeaseSettings
        from worker.webhooks import WebhookDispatcher

        self.config = LeaseSettings()
        self.due = time.monotonic() + self.config.sweep_interval
        WebhookDispatcher().start()

    def maybe(self) -> None:
        if time.monotonic() < self.due:
            return
        from worker.sweeper import sweep_once

        try:
            sweep_once(self.config)
        except Exception as exc:  # the database may be restarting: the next sweep tries again
            print(f"cnnlab: sweep failed: {exc}", file=sys.stderr)
        self.due = time.monotonic() + self.config.sweep_interval


def _stop_all(children: Sequence[subprocess.Popen[bytes]]) -> None:
    # SIGTERM: Celery's warm shutdown and uvicorn's graceful one. SIGQUIT: Celery's cold shutdown
    # (running jobs stop; their messages go back to the queue). Then the whole process group.
    steps = (
        (signal.SIGTERM, STOP_GRACE_S),
        (signal.SIGQUIT, STOP_HARD_S),
        (signal.SIGKILL, STOP_HARD_S),
    )
    for signum, wait_s in steps:
        alive = [c for c in children if c.poll() is None]
        if not alive:
            return
        for child in alive:
            with contextlib.suppress(ProcessLookupError):
                if signum == signal.SIGKILL:
                    os.killpg(child.pid, signum)
                else:
                    child.send_signal(signum)
        deadline = time.monotonic() + wait_s
        for child in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
