"""The tests' own Redis databases: a fixed number per suite, shifted by ``CNNLAB_TEST_REDIS_OFFSET``
so that test runs from several checkouts (or pytest-xdist workers) never share one."""

from __future__ import annotations

import os


def redis_url(db: int) -> str:
    offset = int(os.environ.get("CNNLAB_TEST_REDIS_OFFSET", "0"))
    return f"redis://127.0.0.1:6379/{db + offset}"
