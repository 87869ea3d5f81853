"""Throwaway PostgreSQL databases on the local server for the tests: created, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from cnnlab.testing.postgres import create_database, drop_database


@contextmanager
def _local_server() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc})")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new empty database ``cnnlab_test_<random>`` on the local server; yields its
    SQLAlchemy URL."""
    name = f"cnnlab_test_{uuid.uuid4().hex[:12]}"
    with _local_server():
        url = create_database(name)
    try:
        yield url
    finally:
        from cnnlab.store.db import dispose_engine

        dispose_engine(close=True)
        with _local_server():
            drop_database(name)
