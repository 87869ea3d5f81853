"""A dataset version's ingest under a lease, on SQLite and PostgreSQL: one claim at a time,
a dead worker's ingest sent again and, out of attempts, failed (never stuck), the previous
holder's writes refused; uploads of one name at once get distinct versions."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cnnlab.lifecycle import datasets as lifecycle
from cnnlab.settings import Settings
from cnnlab.status import DatasetStatus
from cnnlab.store import datasets as store
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Blob, BlobChunk, DatasetVersion, utcnow
from tests.utils.factories import make_user

OPTIONS = {"image_size": None, "resize": "center_crop", "test_size": 0.15, "seed": 0}


def _archive(tmp_path: Path, size: int = 3 * 2**20 + 5) -> tuple[Path, str]:
    path = tmp_path / "a.zip"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return path, store.sha256_file(path)


def _version(session: Session, tmp_path: Path) -> str:
    alice, _ = make_user(session)
    path, checksum = _archive(tmp_path)
    _, row = lifecycle.create_version(
        session, alice.id, "parts", path, checksum, OPTIONS, Settings(), enqueue=None
    )
    session.commit()
    return row.id


def _row(session: Session, version_id: str) -> DatasetVersion:
    row = session.get(DatasetVersion, version_id, populate_existing=True)
    assert row is not None
    return row


def _expire(session: Session, version_id: str) -> None:
    past = utcnow() - timedelta(seconds=1)
    session.execute(
        update(DatasetVersion).where(DatasetVersion.id == version_id).values(lease_expires_at=past)
    )
    session.commit()


def test_blobs_are_stored_in_chunks_and_read_back(session: Session, tmp_path: Path) -> None:
    path, checksum = _archive(tmp_path)
    assert store.put_blob(session, path, checksum)
    assert not store.put_blob(session, path, checksum)  # the same bytes: nothing new
    session.commit()
    chunks = session.scalar(
        select(func.count()).select_from(BlobChunk).where(BlobChunk.checksum == checksum)
    )
    assert chunks == 1  # 3 MiB in one 8 MiB chunk
    assert b"".join(store.blob_chunks(session, checksum)) == path.read_bytes()


def test_a_dead_workers_ingest_is_sent_again_then_failed(session: Session, tmp_path: Path) -> None:
    version_id = _version(session, tmp_path)
    first = lifecycle.claim_ingest(session, version_id, "w1", lease_seconds=60, max_attempts=2)
    session.commit()
    assert first is not None and first.attempt == 1
    # Held: another delivery does nothing, and the sweep leaves it alone.
    assert (
        lifecycle.claim_ingest(session, version_id, "w2", lease_seconds=60, max_attempts=2) is None
    )
    assert lifecycle.sweep_ingests(session, max_attempts=2, queued_grace_seconds=60) == []
    session.commit()

    _expire(session, version_id)  # w1 died
    assert lifecycle.sweep_ingests(session, max_attempts=2, queued_grace_seconds=60) == [version_id]
    session.commit()
    second = lifecycle.claim_ingest(session, version_id, "w2", lease_seconds=60, max_attempts=2)
    session.commit()
    assert second is not None and second.attempt == 2
    # The first holder's writes are refused from now on.
    assert not lifecycle.report_progress(session, version_id, 1, 5, 10, 60)
    assert not lifecycle.finish_ingest(session, version_id, 1, error={"type": "x"})
    assert lifecycle.report_progress(session, version_id, 2, 5, 10, 60)
    session.commit()

    _expire(session, version_id)  # w2 died too: out of attempts
    assert lifecycle.sweep_ingests(session, max_attempts=2, queued_grace_seconds=60) == []
    session.commit()
    row = _row(session, version_id)
    assert row.status is DatasetStatus.failed and row.error is not None
    assert row.error["type"] == "worker_lost"


def test_a_lost_message_is_sent_again(session: Session, tmp_path: Path) -> None:
    version_id = _version(session, tmp_path)
    assert lifecycle.sweep_ingests(session, max_attempts=3, queued_grace_seconds=60) == []
    past = utcnow() - timedelta(seconds=120)
    session.execute(
        update(DatasetVersion).where(DatasetVersion.id == version_id).values(enqueued_at=past)
    )
    session.commit()
    assert lifecycle.sweep_ingests(session, max_attempts=3, queued_grace_seconds=60) == [version_id]


def test_uploads_of_one_name_at_once_get_distinct_versions(db_url: str, tmp_path: Path) -> None:
    with session_scope(db_url) as s:
        alice, _ = make_user(s)
        owner = alice.id
    path, checksum = _archive(tmp_path)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            with session_scope(db_url) as s:
                _, row = lifecycle.create_version(
                    s, owner, "parts", path, checksum, OPTIONS, Settings(), enqueue=None
                )
                numbers.append(row.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(numbers) == [1, 2, 3, 4]
    with session_scope(db_url) as s:
        assert (
            s.scalar(select(func.count()).select_from(Blob).where(Blob.checksum == checksum)) == 1
        )


def test_the_workers_sweeper_sends_dead_ingests_again(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.sweeper
    from cnnlab.lifecycle import LeaseSettings
    from cnnlab.settings import get_settings

    monkeypatch.setenv("CNNLAB_DATABASE_URL", db_url)
    get_settings.cache_clear()
    sent: list[str] = []
    monkeypatch.setattr(worker.sweeper, "enqueue_ingest", sent.append)
    with session_scope(db_url) as s:
        version_id = _version(s, tmp_path)
        lifecycle.claim_ingest(s, version_id, "w1", lease_seconds=60, max_attempts=3)
    with session_scope(db_url) as s:
        _expire(s, version_id)
    worker.sweeper._sweep_ingests(LeaseSettings())
    assert version_id in sent  # (with any other test's left in the shared database)
