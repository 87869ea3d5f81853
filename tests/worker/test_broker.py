"""The brokers with real worker processes: every message runs exactly once, however many
processes publish and consume at the same time, and routing follows the job's device."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from cnnlab.settings import get_settings
from cnnlab.testing.procs import REPO, WORKER_READY, Proc, running
from tests.worker.probe import send
from worker.broker import broker_path
from worker.queue import enqueue_job

PROBE = [sys.executable, "-m", "tests.worker.probe"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_for_lines(path: Path, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(_lines(path)) < n:
        time.sleep(0.05)
    return _lines(path)


def test_each_message_runs_exactly_once_across_processes(broker: str, tmp_path: Path) -> None:
    out = tmp_path / "probe.txt"
    env = {"PROBE_OUT": str(out)}
    # Three workers start at once on a broker that does not exist yet: table and queue creation
    # race, then the workers compete for every message.
    workers = [
        Proc([*PROBE, "worker", "cpu", "2"], tmp_path / f"worker{i}.log", env) for i in range(3)
    ]
    with running(*workers):
        senders = [
            subprocess.Popen([*PROBE, "send", "60", f"s{i}"], cwd=REPO, env=None) for i in range(2)
        ]
        assert [s.wait(timeout=60) for s in senders] == [0, 0]
        lines = _wait_for_lines(out, 120, timeout=60)
        time.sleep(0.5)  # a duplicate delivery would land now
        lines = _lines(out)
        for w in workers:
            w.wait_for(WORKER_READY, timeout=5)
    args = Counter(line.split()[0] for line in lines)
    expected = {f"s{i}-{k}" for i in range(2) for k in range(60)}
    assert set(args) == expected
    assert max(args.values()) == 1, [a for a, n in args.items() if n > 1]
    pids = {line.split()[1] for line in lines}
    assert len(pids) >= 2, "the work was not shared between processes"


def test_embedded_broker_routes_by_device(tmp_path: Path) -> None:
    enqueue_job("job-on-cpu", "cpu")
    enqueue_job("job-on-auto", "auto")
    enqueue_job("job-on-gpu", "cuda")
    with sqlite3.connect(broker_path(get_settings().home)) as db:
        rows = db.execute(
            "SELECT q.name, m.payload FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id"
        ).fetchall()
    sent = {json.loads(payload)["headers"]["argsrepr"]: queue for queue, payload in rows}
    assert sent == {
        "['job-on-cpu']": "cpu",
        "['job-on-auto']": "cpu",
        "['job-on-gpu']": "gpu",
    }
    assert {json.loads(p)["headers"]["task"] for _, p in rows} == {"cnnlab.train_job"}


def test_each_queue_is_served_only_by_its_workers(tmp_path: Path) -> None:
    out = tmp_path / "probe.txt"
    env = {"PROBE_OUT": str(out)}
    send(3, "to-cpu", queue="cpu")
    send(3, "to-gpu", queue="gpu")
    with running(
        Proc([*PROBE, "worker", "cpu", "1"], tmp_path / "cpu.log", env),
        Proc([*PROBE, "worker", "gpu", "1"], tmp_path / "gpu.log", env),
    ):
        lines = _wait_for_lines(out, 6, timeout=30)
    served_by = {line.split()[0]: line.split()[2].split("-")[0] for line in lines}
    assert served_by == {f"to-{q}-{i}": q for q in ("cpu", "gpu") for i in range(3)}


def test_importing_the_queue_module_loads_no_torch() -> None:
    code = "import sys, worker.queue; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_warm_shutdown_finishes_the_running_task(tmp_path: Path) -> None:
    out = tmp_path / "probe.txt"
    worker = Proc([*PROBE, "worker", "cpu", "1"], tmp_path / "w.log", {"PROBE_OUT": str(out)})
    with running(worker):
        worker.wait_for(WORKER_READY)
        send(1, "slow", sleep_s=2.0)
        worker.wait_for(r"Task cnnlab\.test\.probe\[.*\] received", timeout=10)
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    assert [line.split()[0] for line in _lines(out)] == ["slow-0"]
