"""An uploaded dataset version's life: added ``ingesting``, decoded by a worker, then ``ready``
or ``failed``; deleted while no queued or running job uses it.

A version's status moves only through :func:`move_version`, along this table::

    to         from       by                    when
    ---------  ---------  --------------------  ---------------------------------------------
    ingesting  (new)      create_version        the upload is stored; sent after commit
    ingesting  ingesting  claim_ingest          a worker takes it (or takes over a dead one's)
    ready      ingesting  finish_ingest         the attempt holding it decoded it
    failed     ingesting  finish_ingest         the archive is not a dataset (the reason kept)
    failed     ingesting  sweep_ingests, claim  its workers kept dying: out of attempts

Like a job's, an ingest is claimed under a lease that its worker renews as it reports progress;
``attempts`` counts the claims and fences the writes, so a worker that lost its lease writes
nothing. A version whose worker died is sent again by the sweep until it is out of attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import DATASETS, DatasetMeta, upload_meta
from cnnlab.errors import CnnlabError, SpecError
from cnnlab.settings import Settings
from cnnlab.spec.train import UPLOADED_DATASET, TrainSpec
from cnnlab.status import DatasetStatus, JobStatus, SearchStatus
from cnnlab.store import datasets as store
from cnnlab.store.db import after_commit, session_scope, session_url
from cnnlab.store.errors import NotFound
from cnnlab.store.retention import check_storage
from cnnlab.store.tables import DatasetVersion, Job, Search, utcnow

log = logging.getLogger(__name__)

# Which statuses a version may move to each status from (the table above).
DATASET_TRANSITIONS: Mapping[DatasetStatus, frozenset[DatasetStatus]] = {
    DatasetStatus.ingesting: frozenset({DatasetStatus.ingesting}),
    DatasetStatus.ready: frozenset({DatasetStatus.ingesting}),
    DatasetStatus.failed: frozenset({DatasetStatus.ingesting}),
}

# Sends a committed version to a worker: ``enqueue(version_id)``.
EnqueueIngest = Callable[[str], None]


class DatasetInUse(CnnlabError):
    code = "dataset_in_use"
    status_code = 409

    def __init__(self, ref: str, jobs: list[str]) -> None:
        super().__init__(
            f"dataset {ref!r} is used by {len(jobs)} queued or running jobs or searches; "
            "cancel them or wait for them to end",
            dataset=ref,
            jobs=jobs,
        )


def move_version(
    session: Session,
    version_id: str,
    to: DatasetStatus,
    *,
    where: tuple[ColumnElement[bool], ...] = (),
    **values: Any,
) -> bool:
    """Move the version to ``to`` if its status allows it and every ``where`` holds, writing
    ``values`` with it. One conditional update; False: nothing changed."""
    moved = session.execute(
        update(DatasetVersion)
        .where(
            DatasetVersion.id == version_id,
            DatasetVersion.status.in_(DATASET_TRANSITIONS[to]),
            *where,
        )
        .values(status=to, **values)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


# -- upload ------------------------------------------------------------------------------------


def create_version(
    session: Session,
    owner_id: int,
    name: str,
    archive: Path,
    checksum: str,
    options: dict[str, Any],
    settings: Settings,
    *,
    enqueue: EnqueueIngest | None,
) -> tuple[str, DatasetVersion]:
    """Store the archive (unless the same bytes are stored already) and add the next version of
    ``name``, ``ingesting``; it is sent to a worker after commit. Returns (name, version)."""
    store.check_name(name)
    check_storage(session, owner_id, settings)
    store.put_blob(session, archive, checksum)
    dataset_id, number = store.next_version(session, owner_id, name)
    version = DatasetVersion(
        dataset_id=dataset_id,
        version=number,
        status=DatasetStatus.ingesting,
        checksum=checksum,
        archive_bytes=archive.stat().st_size,
        options=options,
        image_size=options.get("image_size"),
        resize=str(options.get("resize") or "center_crop"),
        enqueued_at=utcnow(),
    )
    session.add(version)
    session.flush()
    if enqueue is not None:
        version_id, url = version.id, session_url(session)
        after_commit(session, lambda: _send(version_id, enqueue, url))
    return name, version


def _send(version_id: str, enqueue: EnqueueIngest, url: str | None) -> None:
    try:
        enqueue(version_id)
    except Exception as exc:
        log.exception("could not enqueue the ingest of dataset version %s", version_id)
        error = {
            "type": "queue_unavailable",
            "message": f"the upload could not be handed to a worker ({type(exc).__name__}); "
            "upload it again",
        }
        with session_scope(url) as session:
            move_version(
                session, version_id, DatasetStatus.failed, error=error, finished_at=utcnow()
            )


# -- ingest on a worker ------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestClaim:
    version_id: str
    attempt: int
    checksum: str
    options: dict[str, Any]


def _expired(now: Any) -> ColumnElement[bool]:
    return and_(
        DatasetVersion.status == DatasetStatus.ingesting,
        DatasetVersion.lease_expires_at.is_not(None),
        DatasetVersion.lease_expires_at < now,
    )


def _claimable(now: Any) -> ColumnElement[bool]:
    return or_(DatasetVersion.lease_expires_at.is_(None), DatasetVersion.lease_expires_at < now)


def claim_ingest(
    session: Session,
    version_id: str,
    worker_id: str,
    *,
    lease_seconds: float,
    max_attempts: int,
) -> IngestClaim | None:
    """Take an ingesting version no live worker holds; None when there is nothing to do (held,
    ended, deleted). One out of attempts fails with ``worker_lost`` here."""
    now = utcnow()
    row = session.get(DatasetVersion, version_id)
    if row is None or row.status is not DatasetStatus.ingesting:
        return None
    # Read before the update, which refreshes ``row`` in the session.
    attempts, checksum, options = row.attempts, row.checksum, dict(row.options)
    if attempts >= max_attempts:
        _fail_lost(session, version_id, attempts, now)
        return None
    claimed = move_version(
        session,
        version_id,
        DatasetStatus.ingesting,
        where=(_claimable(now), DatasetVersion.attempts == attempts),
        attempts=attempts + 1,
        worker_id=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    if not claimed:
        return None
    return IngestClaim(version_id, attempts + 1, checksum, options)


def _fail_lost(session: Session, version_id: str, attempts: int, now: Any) -> bool:
    error = {
        "type": "worker_lost",
        "message": f"the workers decoding it stopped {attempts} times; upload it again",
    }
    return move_version(
        session,
        version_id,
        DatasetStatus.failed,
        where=(_claimable(now),),
        error=error,
        finished_at=now,
        lease_expires_at=None,
        progress=None,
    )


def _held(version_id: str, attempt: int) -> tuple[ColumnElement[bool], ...]:
    return (DatasetVersion.id == version_id, DatasetVersion.attempts == attempt)


def report_progress(
    session: Session, version_id: str, attempt: int, done: int, total: int, lease_seconds: float
) -> bool:
    """Record progress and renew the lease; False: the version was taken over or deleted."""
    renewed = session.execute(
        update(DatasetVersion)
        .where(*_held(version_id, attempt), DatasetVersion.status == DatasetStatus.ingesting)
        .values(
            progress={"done": done, "total": total},
            lease_expires_at=utcnow() + timedelta(seconds=lease_seconds),
        )
    )
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


def finish_ingest(
    session: Session,
    version_id: str,
    attempt: int,
    *,
    result: dict[str, Any] | None = None,
    blobs: list[tuple[Path, str]] | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """End this attempt's ingest: ``ready`` with ``result`` (the version's fields) and the files
    it refers to stored as blobs (path, sha256) in the same transaction, or ``failed`` with
    ``error``. False: not this attempt's any more (taken over, or deleted)."""
    fence = (DatasetVersion.attempts == attempt,)
    now = utcnow()
    if error is not None or result is None:
        return move_version(
            session,
            version_id,
            DatasetStatus.failed,
            where=fence,
            error=error,
            finished_at=now,
            lease_expires_at=None,
            progress=None,
        )
    if session.scalar(select(DatasetVersion.id).where(*_held(version_id, attempt))) is None:
        return False
    for path, checksum in blobs or []:
        store.put_blob(session, path, checksum)
    return move_version(
        session,
        version_id,
        DatasetStatus.ready,
        where=fence,
        finished_at=now,
        lease_expires_at=None,
        **result,
    )


def sweep_ingests(session: Session, *, max_attempts: int, queued_grace_seconds: float) -> list[str]:
    """Versions to send to a worker again: their worker died (the lease expired) or their
    message was lost (never claimed long after it was sent). Out of attempts, they fail."""
    now = utcnow()
    again: list[str] = []
    for version_id, attempts in session.execute(
        select(DatasetVersion.id, DatasetVersion.attempts).where(_expired(now))
    ).all():
        if attempts >= max_attempts:
            _fail_lost(session, version_id, attempts, now)
        elif move_version(
            session,
            version_id,
            DatasetStatus.ingesting,
            where=(_expired(now),),
            lease_expires_at=None,
            enqueued_at=now,
        ):
            again.append(version_id)
    stale = now - timedelta(seconds=queued_grace_seconds)
    sent_at = func.coalesce(DatasetVersion.enqueued_at, DatasetVersion.created_at)
    for version_id in session.scalars(
        select(DatasetVersion.id).where(
            DatasetVersion.status == DatasetStatus.ingesting,
            DatasetVersion.lease_expires_at.is_(None),
            sent_at < stale,
        )
    ).all():
        session.execute(
            update(DatasetVersion).where(DatasetVersion.id == version_id).values(enqueued_at=now)
        )
        again.append(version_id)
    return again


# -- specs -------------------------------------------------------------------------------------


def meta_of(ref: str, row: DatasetVersion) -> DatasetMeta:
    """A ready version's meta, as training, validation and budgets see it."""
    counts = row.counts or {}
    assert row.decoded_checksum and row.channels and row.image_size and row.classes
    return upload_meta(
        ref,
        decoded=row.decoded_checksum,
        channels=row.channels,
        image_size=row.image_size,
        classes=list(row.classes),
        mean=list(row.mean or []),
        std=list(row.std or []),
        train=int(counts.get("train", 0)) + int(counts.get("val", 0)),
        test=int(counts.get("test", 0)),
        resize=row.resize,
    )


def resolve_dataset(
    session: Session, owner_id: int, spec: TrainSpec
) -> tuple[TrainSpec, dict[str, DatasetMeta]]:
    """The spec with an uploaded ``dataset`` pinned to ``NAME@V`` (a job always trains the
    version it was checked against), and the metas to put in scope
    (:func:`cnnlab.datasets.catalog.uploads_in_scope`); a built-in passes unchanged."""
    if spec.dataset in DATASETS:
        return spec, {}
    resolved = store.resolve(session, owner_id, spec.dataset)
    pinned = spec.model_copy(update={"dataset": resolved.ref})
    return pinned, {resolved.ref: meta_of(resolved.ref, resolved.version)}


def pin_base_dataset(
    session: Session, owner_id: int, base: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, DatasetMeta]]:
    """A search base's uploaded ``dataset`` pinned to ``NAME@V`` (every trial trains the same
    version), with the metas to put in scope; errors name ``base.dataset``."""
    dataset = base.get("dataset")
    if (
        not isinstance(dataset, str)
        or dataset in DATASETS
        or not UPLOADED_DATASET.fullmatch(dataset)
    ):
        return base, {}  # a built-in, or a value the base's own validation refuses
    try:
        resolved = store.resolve(session, owner_id, dataset)
    except SpecError as exc:
        raise SpecError("base.dataset", exc.message.split(": ", 1)[-1]) from None
    meta = meta_of(resolved.ref, resolved.version)
    return {**base, "dataset": resolved.ref}, {resolved.ref: meta}


def metas_for(session: Session, owner_id: int, dataset: str) -> dict[str, DatasetMeta]:
    """The metas a pinned spec (``NAME@V``) of ``owner_id`` needs in scope; {} for a built-in."""
    if dataset in DATASETS:
        return {}
    resolved = store.resolve(session, owner_id, dataset)
    return {resolved.ref: meta_of(resolved.ref, resolved.version)}


def fetch_uploads(
    owner_id: int, dataset: str, settings: Settings, url: str | None = None
) -> dict[str, DatasetMeta]:
    """:func:`metas_for`, with each version's decoded tensors fetched into this machine's
    cache (``CNNLAB_HOME/cache/datasets``) so that loading them needs no database."""
    if dataset in DATASETS:
        return {}
    with session_scope(url) as session:
        metas = metas_for(session, owner_id, dataset)
    for meta in metas.values():
        assert meta.decoded is not None
        store.fetch_decoded(meta.decoded, settings, url)
    return metas


# -- deletion ----------------------------------------------------------------------------------


def _users(session: Session, owner_id: int, name: str, numbers: set[int]) -> list[str]:
    """Queued or running jobs and live searches of the owner that train on these versions
    (``NAME@V``; a spec naming just ``NAME`` was pinned at submit)."""
    refs = {f"{name}@{n}" for n in numbers}
    jobs = session.execute(
        select(Job.id, Job.spec).where(
            Job.owner_id == owner_id, Job.status.in_((JobStatus.queued, JobStatus.running))
        )
    ).all()
    found = [job_id for job_id, spec in jobs if spec.get("dataset") in refs]
    live = [s for s in SearchStatus if not s.ended]
    searches = session.execute(
        select(Search.id, Search.base).where(Search.owner_id == owner_id, Search.status.in_(live))
    ).all()
    return found + [sid for sid, base in searches if base.get("dataset") in refs]


def blobs_of(rows: list[DatasetVersion]) -> set[str]:
    """The blobs the versions refer to: archive, decoded tensors, sample grid."""
    found = set()
    for row in rows:
        found |= {c for c in (row.checksum, row.decoded_checksum, row.samples_checksum) if c}
    return found


def delete_version(session: Session, owner_id: int, name: str, number: int) -> None:
    """Delete one version and its bytes no other version shares; 409 while used."""
    row = store.get_version(session, owner_id, name, number)
    users = _users(session, owner_id, name, {number})
    if users:
        raise DatasetInUse(f"{name}@{number}", users)
    blobs = blobs_of([row])
    session.delete(row)
    session.flush()
    store.delete_unused_blobs(session, blobs)


def delete_dataset(session: Session, owner_id: int, name: str) -> None:
    """Delete every version of the dataset. The name's row stays, holding the last number
    given, so a later upload of the name does not reuse a deleted version's number."""
    dataset = store.dataset_row(session, owner_id, name)
    rows = store.versions(session, dataset.id)
    if not rows:
        raise NotFound("dataset", name)
    users = _users(session, owner_id, name, {r.version for r in rows})
    if users:
        raise DatasetInUse(name, users)
    blobs = blobs_of(rows)
    session.execute(delete(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id))
    store.delete_unused_blobs(session, blobs)
