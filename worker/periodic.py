"""Work a worker's main process does every few seconds from a daemon thread: sweeping,
heartbeats, webhook deliveries.

Never while this process forks: a pool child forked mid-round would inherit the locks (SQLite's,
the connection pool's) the thread held, and could hang. Each round takes :attr:`busy`, and so
does every fork (``os.register_at_fork``).
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)


class Periodic:
    """Calls :meth:`run_once` every ``interval`` seconds from a daemon thread until stopped; an
    error is logged and the next round tries again (the database or broker may be restarting).
    Subclasses that need the fork lock only for part of a round set ``lock_rounds = False`` and
    take :attr:`busy` themselves."""

    lock_rounds = True

    def __init__(self, name: str, interval: float) -> None:
        self.interval = interval
        self.busy = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        os.register_at_fork(
            before=self.busy.acquire,
            after_in_parent=self.busy.release,
            after_in_child=self.busy.release,
        )
        self._thread.start()

    def stop(self, wait: float | None = None) -> None:
        self._stop.set()
        if wait is not None and self._thread.is_alive():
            self._thread.join(timeout=wait)

    def run_once(self) -> object:
        raise NotImplementedError

    def _round(self) -> None:
        try:
            self.run_once()
        except Exception:
            logger.warning("%s: a round failed", self._thread.name, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.lock_rounds:
                with self.busy:
                    self._round()
            else:
                self._round()
