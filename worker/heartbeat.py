"""A worker's heartbeat: its row in ``workers`` (queues, GPUs, version, last seen), written by
the worker's main process from a thread every ``worker_heartbeat_seconds`` and removed when the
worker stops cleanly. ``GET /v1/workers`` lists the live ones, and a ``device: cuda`` job is
refused at submit when none of them serves the gpu queue (:mod:`cnnlab.lifecycle.gpu`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence

from cnnlab import __version__
from cnnlab.settings import get_settings
from cnnlab.store import workers
from cnnlab.store.db import session_scope
from worker.periodic import Periodic

logger = logging.getLogger(__name__)


def worker_id() -> str:
    """``<host>/<pid>`` of this (main) process."""
    return f"{socket.gethostname()}/{os.getpid()}"


def gpu_names(ids: Sequence[str]) -> list[str]:
    """A name for each device id (``nvidia-smi``'s, without touching CUDA in this process;
    ``GPU <id>`` where it cannot say)."""
    names: dict[str, str] = {}
    if ids and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",", 2)]
            if len(parts) == 3:
                names[parts[0]] = names[parts[1]] = parts[2]
    return [names.get(i, f"GPU {i}") for i in ids]


class Heartbeat(Periodic):
    """Beats once when started (so a worker is listed by the time it says it is ready), then
    every ``interval`` seconds from a daemon thread; :meth:`stop` removes the row."""

    def __init__(
        self,
        queues: Sequence[str],
        devices: Sequence[str],
        interval: float | None = None,
        ident: str | None = None,
    ) -> None:
        super().__init__("cnnlab-heartbeat", interval or get_settings().worker_heartbeat_seconds)
        self.queues = list(queues)
        self.devices = list(devices)
        self.id = ident or worker_id()
        # A beat catches its own errors (a database restarting): the thread never sees one.
        self.lock_rounds = False

    def start(self) -> None:
        self.beat()
        super().start()

    def stop(self, wait: float | None = 5) -> None:
        super().stop(wait)
        try:
            with session_scope() as session:
                workers.remove(session, self.id)
        except Exception:
            logger.warning("could not remove this worker's heartbeat row", exc_info=True)

    def run_once(self) -> None:
        self.beat()

    def beat(self) -> None:
        with self.busy:
            try:
                with session_scope() as session:
                    workers.beat(
                        session,
                        self.id,
                        queues=self.queues,
                        devices=self.devices,
                        version=__version__,
                    )
            except Exception:
                # The database may be restarting: the next beat tries again.
                logger.warning("heartbeat failed", exc_info=True)
