"""The embedded broker: Kombu's SQLAlchemy transport on a SQLite file under ``CNNLAB_HOME``.

Kombu's stock transport takes each message inside ``BEGIN IMMEDIATE``, so SQLite's write lock
hands every message to exactly one of several processes. Three things are not safe when several
processes start at once, and this subclass fixes them:

- creating the tables (two ``CREATE TABLE`` races) — done once under a file lock, before Kombu's
  own ``create_all`` runs (which then finds them and does nothing);
- creating a queue row (a unique-name race raises ``IntegrityError``, not the ``OperationalError``
  Kombu expects) — the loser reads the winner's row;
- SQLite's default 5 s busy wait — raised, and WAL is switched on so pollers don't block readers.

Transport options are not handed to ``create_engine`` (the stock channel does that), so
``polling_interval`` can be set like on any other virtual transport.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

BROKER_FILE = "broker.sqlite3"
# Seconds a process waits for SQLite's write lock before the operation fails.
BUSY_TIMEOUT_S = 30.0
# How often an idle worker looks for a message; the cost is one short write transaction.
POLLING_INTERVAL_S = 0.1


def broker_path(home: Path) -> Path:
    return home / BROKER_FILE


def broker_url(home: Path) -> str:
    return f"sqlite:///{broker_path(home)}"


def _enable_wal(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _create_tables_once(engine: Engine, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            kombu_sqla.metadata.create_all(engine)
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


class EmbeddedChannel(kombu_sqla.Channel):
    def _engine_from_config(self) -> Engine:
        url = self.connection.client.hostname
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _enable_wal(engine)
        database = engine.url.database
        if database:
            _create_tables_once(engine, Path(database))
        return engine

    def _get_or_create(self, queue: str) -> Any:
        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            # Another process created the queue between our lookup and insert.
            self.session.rollback()
            return self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).one()


class EmbeddedTransport(kombu_sqla.Transport):
    Channel = EmbeddedChannel
    polling_interval = POLLING_INTERVAL_S
