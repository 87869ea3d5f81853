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
import threading
from collections.abc import Sequence

from cnnlab import __version__
from cnnlab.settings import get_settings
from cnnlab.store import workers
from cnnlab.store.db import session_scope

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


class Heartbeat:
    """Beats once when started (so a worker is listed by the time it says it is ready), then
    every ``interval`` seconds from a daemon thread; :meth:`stop` removes the row.

    As with the sweeper, a beat never overlaps a fork of this process (a child forked mid-beat
    would inherit the locks the beating thread held)."""

    def __init__(
        self,
        queues: Sequence[str],
        devices: Sequence[str],
        interval: float | None = None,
        ident: str | None = None,
    ) -> None:
        self.queues = list(queues)
        self.devices = list(devices)
        self.interval = interval or get_settings().worker_heartbeat_seconds
        self.id = ident or worker_id()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cnnlab-heartbeat", daemon=True)

    def start(self) -> None:
        os.register_at_fork(
            before=self._busy.acquire,
            after_in_parent=self._busy.release,
            after_in_child=self._busy.release,
        )
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            with session_scope() as session:
                workers.remove(session, self.id)
        except Exception:
            logger.warning("could not remove this worker's heartbeat row", exc_info=True)

    def beat(self) -> None:
        with self._busy:
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

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()
