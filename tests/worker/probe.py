"""A trivial task and command-line entry points for exercising the broker with real processes.

``python -m tests.worker.probe worker QUEUE CONCURRENCY`` runs a worker with the production
Celery configuration but only this module's task; ``python -m tests.worker.probe send N PREFIX``
sends N probe tasks. Each run of the task appends ``<arg> <pid> <worker name>`` to ``$PROBE_OUT``.
"""

from __future__ import annotations

import os
import sys
import time

from celery import Task, shared_task

from worker.app import CPU_QUEUE, get_celery
from worker.process import WorkerPlan, worker_argv

PROBE_TASK = "cnnlab.test.probe"


@shared_task(name=PROBE_TASK, bind=True)
def probe(self: Task, arg: str, sleep_s: float = 0.0) -> None:
    time.sleep(sleep_s)
    # One short O_APPEND write per line: concurrent writers never interleave.
    fd = os.open(os.environ["PROBE_OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{arg} {os.getpid()} {self.request.hostname}\n".encode())
    finally:
        os.close(fd)


def send(n: int, prefix: str, queue: str = CPU_QUEUE, sleep_s: float = 0.0) -> None:
    app = get_celery()
    for i in range(n):
        app.send_task(PROBE_TASK, args=[f"{prefix}-{i}", sleep_s], queue=queue)


def main(argv: list[str]) -> int:
    if argv[0] == "worker":
        app = get_celery()
        app.conf.include = [__name__]
        plan = WorkerPlan((argv[1],), int(argv[2]), 1, ())
        return int(app.start(worker_argv(plan)) or 0)
    if argv[0] == "send":
        sleep_s = float(argv[3]) if len(argv) > 3 else 0.0
        send(int(argv[1]), argv[2], sleep_s=sleep_s)
        return 0
    raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
