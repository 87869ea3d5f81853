"""``cnnlab serve``'s default worker processes: a search's trials side by side on 2 cores, and
never fewer than two threads a process past that."""

from __future__ import annotations

import pytest

from worker.commands import default_workers


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (3, 2), (4, 2), (8, 4), (16, 8)])
def test_one_worker_per_two_cores_and_two_on_two_cores(cores: int, workers: int) -> None:
    assert default_workers(cores) == workers
