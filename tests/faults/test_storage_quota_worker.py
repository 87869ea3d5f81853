"""A running job's checkpoints count towards its owner's storage quota, through a real worker
process: the job whose first checkpoints would take its owner past the quota ends ``failed``
with ``storage_quota`` (nothing of that epoch stored), and the worker goes on to the next job.
Before, a running job stored its checkpoints whatever the quota."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from cnnlab.store.db import session_scope
from cnnlab.store.tables import Checkpoint
from tests.faults.harness import TINY, wait_ended, worker_env, workers
from tests.utils.factories import submit

pytestmark = pytest.mark.slow

QUOTA = 1000  # bytes: less than one checkpoint of the smallest model


def test_a_job_whose_checkpoint_would_cross_the_quota_fails_with_storage_quota(
    mnist_home: Path, tmp_path: Path
) -> None:
    first, second = submit(TINY), submit(TINY)  # under the quota when submitted (nothing stored)
    with workers(tmp_path, 1, worker_env(CNNLAB_MAX_STORAGE_BYTES=str(QUOTA))):
        rows = wait_ended([first, second], timeout=120)
    for job_id in (first, second):
        row = rows[job_id]
        assert row.status == "failed", row
        assert row.error is not None and row.error["type"] == "storage_quota"
        assert row.error["limit_bytes"] == QUOTA and row.error["used_bytes"] > QUOTA
        assert row.error["epoch"] == 1
        with session_scope() as session:
            stored = session.scalar(
                select(func.count()).select_from(Checkpoint).where(Checkpoint.job_id == job_id)
            )
        assert stored == 0
