"""The tests' own Redis databases: a fixed number per suite, shifted by ``CNNLAB_TEST_REDIS_OFFSET``
so that test runs from several checkouts never share one, and by two more for each pytest-xdist
worker after the first (``gw1``: +2, ``gw2``: +4) so that a run's workers never share one either.
``CNNLAB_TEST_REDIS_SERVER`` (default ``redis://127.0.0.1:6379``) points the tests at another
server, e.g. one started with more than Redis's 16 databases for several checkouts at once."""

from __future__ import annotations

import os

# How many numbers one test process takes: the suites' own databases are 5 and 6.
PER_PROCESS = 2


def redis_url(db: int) -> str:
    offset = int(os.environ.get("CNNLAB_TEST_REDIS_OFFSET", "0"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # unset without xdist
    server = os.environ.get("CNNLAB_TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
    return f"{server}/{db + offset + PER_PROCESS * int(worker.removeprefix('gw'))}"
