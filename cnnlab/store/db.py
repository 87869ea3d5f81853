"""Engines and sessions, built from the settings' database URL.

One engine per URL per process. After a fork (Celery's prefork pool) the child must call
:func:`dispose_engine` so it never reuses the parent's pooled connections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from cnnlab.settings import get_settings

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled connection idle this long is checked with a round trip before it is used again.
PING_AFTER_IDLE_S = 1.0
_AFTER_COMMIT = "cnnlab_after_commit"
_IDLE_SINCE = "cnnlab_idle_since"
_URL = "cnnlab_url"

# Connections kept open per process: as many as the API's requests use at once under load, so a
# busy API does not open and close an overflow connection per request (SQLAlchemy keeps 5).
_POOL: dict[str, Any] = {"pool_size": 16, "max_overflow": 24}

_engines: dict[str, Engine] = {}
_sessionmakers: dict[tuple[str, bool], sessionmaker[Session]] = {}


def normalize_url(url: str | URL) -> URL:
    """Pick the psycopg 3 driver for a bare ``postgresql://`` URL (psycopg2 is not installed)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout makes writers wait, not fail.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | URL) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **_POOL)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    engine = create_engine(parsed, **_POOL)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle for :data:`PING_AFTER_IDLE_S`.

    A connection kept across a database restart is dead, and its first query would fail. Pinging
    on every checkout (``pool_pre_ping``) costs a round trip per request on a busy API (a tenth
    of its reads per second here); a connection used within the last second is almost always
    alive, and if the server went away in that second, the failed query makes SQLAlchemy drop
    the whole pool, so the requests after it reconnect.
    """
    pool = engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool replaces the connection and runs the checkout again with a new one.
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the settings' database URL)."""
    key = url or get_settings().resolved_database_url
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = make_engine(key)
    return engine


def get_sessionmaker(url: str | None = None, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on the process's engine for ``url``. ``read_only`` sessions run each statement
    in autocommit mode: no BEGIN and COMMIT round trips around a read (on PostgreSQL, whose
    default isolation gives each statement its own snapshot anyway, a read sees the same data)."""
    url = url or get_settings().resolved_database_url
    factory = _sessionmakers.get((url, read_only))
    if factory is None:
        engine = get_engine(url)
        # SQLite's driver starts no transaction for a SELECT already, and switching its mode
        # costs a PRAGMA on every checkout and return.
        if read_only and engine.dialect.name != "sqlite":
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Objects stay readable after commit: handlers build responses from them.
        factory = sessionmaker(engine, expire_on_commit=False)
        _sessionmakers[(url, read_only)] = factory
    return factory


def dispose_engine(*, close: bool = False) -> None:
    """Forget every engine; the next call builds fresh ones.

    The default suits a forked child: connections inherited from the parent are left for the
    parent to close. ``close=True`` closes the pooled connections (shutdown, tests).
    """
    for engine in _engines.values():
        engine.dispose(close=close)
    _engines.clear()
    _sessionmakers.clear()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the caller has committed ``session`` (e.g. enqueue a job by id)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def open_session(url: str | None = None, *, read_only: bool = False) -> Session:
    """A new session (no I/O yet: it connects on first use). End it with :func:`finish` or
    :func:`abort`, or use :func:`session_scope` or :func:`read_scope`."""
    session = get_sessionmaker(url, read_only=read_only)()
    session.info[_URL] = url
    return session


def session_url(session: Session) -> str | None:
    """The URL the session was opened with (None: the settings' URL)."""
    url: str | None = session.info.get(_URL)
    return url


def finish(session: Session) -> None:
    """Commit, run the callbacks registered with :func:`after_commit`, close."""
    try:
        session.commit()
    except BaseException:
        abort(session)
        raise
    callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_COMMIT, [])
    session.close()
    for callback in callbacks:
        callback()


def abort(session: Session) -> None:
    """Roll back, drop the after-commit callbacks, close."""
    session.info.pop(_AFTER_COMMIT, None)
    try:
        session.rollback()
    finally:
        session.close()


@contextmanager
def read_scope(url: str | None = None) -> Iterator[Session]:
    """A short read in a ``read_only`` session (see :func:`get_sessionmaker`), closed at the end.
    For reads only: in autocommit mode a statement that writes is committed at once."""
    session = open_session(url, read_only=True)
    try:
        yield session
    finally:
        session.close()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A short unit of work: commit on success (then the after-commit callbacks), else roll back."""
    session = open_session(url)
    try:
        yield session
    except BaseException:
        abort(session)
        raise
    finish(session)
