"""Alembic, configured in code: ``upgrade()`` waits for the database, then applies migrations.

The scripts live in the ``migrations`` package (installed as package data), so this works from an
installed wheel as well as from a checkout.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from cnnlab.settings import get_settings
from cnnlab.store.db import make_engine, normalize_url

log = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 30.0


def script_location() -> Path:
    import migrations

    # __path__ rather than __file__: also right when the package is found as a namespace.
    return Path(next(iter(migrations.__path__))).resolve()


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    db_url = normalize_url(url or get_settings().resolved_database_url)
    # Read by migrations/env.py; '%' must be doubled for ConfigParser interpolation.
    cfg.set_main_option(
        "sqlalchemy.url", db_url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def wait_for_database(url: str | None = None, timeout: float = DEFAULT_WAIT_SECONDS) -> None:
    """Return once the database accepts a connection; raise after ``timeout`` seconds."""
    engine = make_engine(url or get_settings().resolved_database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.info("waiting for the database: %s", exc.orig)
                time.sleep(0.5)
    finally:
        engine.dispose()


def upgrade(
    url: str | None = None, revision: str = "head", *, wait: float = DEFAULT_WAIT_SECONDS
) -> None:
    wait_for_database(url, wait)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url or get_settings().resolved_database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
