"""Real service processes for tests: started in their own session, logs to a file, always reaped."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CNNLAB = [sys.executable, "-m", "cnnlab"]
WORKER_READY = re.compile(r"@\S+ ready\.")


class Proc:
    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.args = list(args)
        self._log_file = open(log, "wb")  # noqa: SIM115  (closed in stop())
        self.popen = subprocess.Popen(
            list(args),
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 60.0) -> None:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(self.text()):
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.args} exited early:\n{self.text()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {regex.pattern!r} within {timeout}s:\n{self.text()[-4000:]}")

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then kill the whole session if it lingers; returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            code: int | None = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log_file.close()
        return code


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[tuple[Proc, ...]]:
    try:
        yield procs
    finally:
        for p in procs:  # all at once: each takes a few seconds to shut down
            p.signal(signal.SIGTERM)
        for p in procs:
            p.stop()
