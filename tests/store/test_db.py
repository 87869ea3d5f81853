"""Sessions on PostgreSQL: reads without a transaction, and pooled connections that outlive
their server process."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cnnlab.store import db
from cnnlab.testing.postgres import SERVER


def _backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill_backend(pid: int) -> None:
    """What a database restart does to a pooled connection."""
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for it to end


def _in_one_transaction(session: Session) -> bool:
    """Whether a second statement runs in the first one's transaction (its start time stays)."""
    session.execute(text("SELECT 1"))
    time.sleep(0.01)
    return not session.execute(text("SELECT now() = statement_timestamp()")).scalar_one()


def test_reads_run_each_statement_on_its_own(pg_url: str) -> None:
    with db.read_scope(pg_url) as session:
        assert not _in_one_transaction(session)
    with db.session_scope(pg_url) as session:
        assert _in_one_transaction(session)


def test_a_connection_killed_while_idle_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    for scope in (db.read_scope, db.session_scope):
        with scope(pg_url) as session:
            pid = _backend_pid(session)
        _kill_backend(pid)
        with scope(pg_url) as session:
            assert _backend_pid(session) != pid  # no error: the dead one was replaced


def test_a_connection_used_a_moment_ago_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The price of skipping the ping: one query fails, then the pool starts afresh."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    db.dispose_engine(close=True)
    with db.read_scope(pg_url) as session:
        pid = _backend_pid(session)
    _kill_backend(pid)
    with pytest.raises(OperationalError), db.read_scope(pg_url) as session:
        _backend_pid(session)
    with db.read_scope(pg_url) as session:
        assert _backend_pid(session) != pid
