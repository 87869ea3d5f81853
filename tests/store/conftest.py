"""Store tests run on SQLite and on PostgreSQL (a throwaway database per test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cnnlab.store import migrate
from cnnlab.store.db import dispose_engine, get_sessionmaker


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, cnnlab_home: Path) -> Iterator[str]:
    """A migrated database: a fresh SQLite file, or the module's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{cnnlab_home / 'store.db'}"
        migrate.upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
    yield url
    dispose_engine(close=True)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session whose work the test commits itself (as the API and the worker do)."""
    with get_sessionmaker(db_url)() as s:
        yield s
