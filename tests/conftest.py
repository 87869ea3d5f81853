"""Every test gets its own CNNLAB_HOME and data directory; nothing touches ~/.cnnlab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnlab.settings import get_settings

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def cnnlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "cnnlab-home"
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CNNLAB_DOWNLOAD", raising=False)
    monkeypatch.delenv("CNNLAB_DATABASE_URL", raising=False)
    monkeypatch.delenv("CNNLAB_BROKER_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A migrated throwaway PostgreSQL database, shared by one test module, dropped after."""
    from cnnlab.store import migrate
    from tests.store.postgres import throwaway_database

    with throwaway_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def real_fashion_mnist() -> Path:
    if not (FASHION_MNIST_DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian's dataset-fashion-mnist is not installed (apt-get install it)")
    return FASHION_MNIST_DEBIAN
