"""Throwaway PostgreSQL databases for tests: created on the local server, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(SERVER, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc})")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new empty database ``cnnlab_test_<random>``; yields its SQLAlchemy URL."""
    name = f"cnnlab_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield URL.format(name=name)
    finally:
        from cnnlab.store.db import dispose_engine

        dispose_engine(close=True)
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
