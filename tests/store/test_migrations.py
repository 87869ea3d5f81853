"""The migrations create exactly the models' schema, and go up and down on both backends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from cnnlab.store import migrate
from cnnlab.store.db import make_engine
from cnnlab.store.tables import Base
from tests.utils.postgres import throwaway_database

TABLES = {
    "users",
    "datasets",
    "dataset_versions",
    "blobs",
    "blob_chunks",
    "tokens",
    "searches",
    "jobs",
    "epoch_metrics",
    "checkpoints",
    "registered_models",
    "model_versions",
    "model_aliases",
    "workers",
    "webhooks",
    "webhook_events",
    "job_inputs",
    "job_tags",
    "batch_prediction_rows",
    "webhook_deliveries",
    "webhook_attempts",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        with throwaway_database() as url:
            yield url


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_models_and_migrations_agree(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert _diff(empty_url) == []


def test_an_empty_database_differs_from_the_models(empty_url: str) -> None:
    # The agreement check above can fail: without migrations every table is reported missing.
    assert len(_diff(empty_url)) >= len(TABLES)


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert _tables(empty_url) == TABLES
    assert migrate.current(empty_url) is not None
    migrate.downgrade(empty_url, "base")
    assert _tables(empty_url) == set()
    assert migrate.current(empty_url) is None
    migrate.upgrade(empty_url)
    migrate.upgrade(empty_url)  # a second upgrade is a no-op
    assert _tables(empty_url) == TABLES


def test_wait_for_database_gives_up() -> None:
    with pytest.raises(OperationalError):
        migrate.wait_for_database("postgresql://postgres@127.0.0.1:1/none", timeout=0.5)


def test_cli_db_upgrade_uses_the_settings_url(cnnlab_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "database at" in result.stdout
    assert _tables(f"sqlite:///{cnnlab_home / 'cnnlab.db'}") == TABLES
