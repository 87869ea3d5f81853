"""Migrated databases for the tests without running Alembic for each one.

Alembic costs about half a second per upgrade, and most tests want a fresh migrated database. So a
test process migrates once and copies: SQLite from a template file migrated on first use, and
PostgreSQL from one migrated database per test process that is emptied between test modules
(``TRUNCATE`` of every table, as a drop and re-create would leave it, at a fraction of the cost).
The migrations themselves are tested in tests/store/test_migrations.py, on databases of their own.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from cnnlab.settings import get_settings
from cnnlab.store import migrate
from cnnlab.store.db import dispose_engine

_template: Path | None = None


def _sqlite_template() -> Path:
    """This process's migrated SQLite file, made on first use and removed at exit."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="cnnlab-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "store.db"
        migrate.upgrade(f"sqlite:///{path}")
        dispose_engine(close=True)
        # Fold the write-ahead log into the file, so that the file alone is the whole database.
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        _template = path
    return _template


def upgraded(url: str | None = None) -> str:
    """The database at ``url`` (default: the settings' one) at the migrations' head, as
    ``migrate.upgrade`` leaves it; a SQLite database that does not exist yet is a copy of the
    template. Returns the URL."""
    url = url or get_settings().resolved_database_url
    parsed = make_url(url)
    path = Path(parsed.database or "")
    if parsed.get_backend_name() == "sqlite" and parsed.database and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template(), path)
    else:
        migrate.upgrade(url)
    return url


def empty_postgres(url: str) -> None:
    """Empty every table of the migrated PostgreSQL database at ``url`` but Alembic's, after
    ending its other connections (as ``DROP DATABASE … WITH (FORCE)`` would)."""
    dispose_engine(close=True)
    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        rows = conn.execute(
            "SELECT quote_ident(tablename) FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
        if rows:
            tables = ", ".join(name for (name,) in rows)
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
