"""Load on the embedded stack (SQLite and the embedded broker): 30 jobs submitted at once to
``cnnlab serve`` with two workers, every message delivered twice — each job trains once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cnnlab.testing.procs import Proc
from cnnlab.testing.stack import CNNLAB, ENDED, Stack, free_port, stack_env, started, wait_until
from tests.faults.harness import TINY
from tests.utils.datasets import write_mnist
from worker.queue import enqueue_job

pytestmark = pytest.mark.slow

JOBS = 30


def test_thirty_jobs_at_once_each_train_once(cnnlab_home: Path) -> None:
    write_mnist(cnnlab_home / "data", n_train=700, n_test=100)
    env = stack_env(cnnlab_home, CNNLAB_MAX_ACTIVE_JOBS=str(JOBS))
    port = free_port()
    serve = Proc([*CNNLAB, "serve", f"--port={port}", "--workers=2"], cnnlab_home / "s.log", env)
    with started(Stack(f"http://127.0.0.1:{port}", env, [serve])) as stack, stack.client() as c:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: c.post("/v1/jobs", json=TINY), range(JOBS)))
        assert [a.status_code for a in answers] == [201] * JOBS, answers[0].text
        ids = [a.json()["id"] for a in answers]
        for job_id in ids:  # a duplicate delivery of every job: harmless
            enqueue_job(job_id, "auto")

        def all_ended() -> list[dict] | None:
            jobs = c.get("/v1/jobs", params={"limit": 100}).json()["items"]
            return jobs if all(j["status"] in ENDED for j in jobs) else None

        jobs = wait_until(all_ended, 150, "every job to end", poll=0.5)
        metrics = {j: [m["epoch"] for m in c.get(f"/v1/jobs/{j}/metrics").json()] for j in ids}
        log = serve.text()
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    failed = [j for j in jobs if j["status"] != "succeeded"]
    assert not failed, (failed[:3], log[-3000:])
    assert all(j["attempts"] == 1 for j in jobs), [j["attempts"] for j in jobs]
    assert all(epochs == [1] for epochs in metrics.values()), metrics
    assert "database is locked" not in log
    assert log.count("started on") == JOBS  # each trained once: the duplicates were skipped
