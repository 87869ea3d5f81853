from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.store.db import dispose_engine
from tests.utils.databases import upgraded
from tests.utils.datasets import write_mnist


@pytest.fixture
def mnist_home(cnnlab_home: Path, data_dir: Path) -> Iterator[Path]:
    """A migrated SQLite database and a small generated MNIST under this test's home."""
    write_mnist(data_dir, n_train=8000, n_test=200)
    upgraded()
    yield cnnlab_home
    dispose_engine(close=True)
