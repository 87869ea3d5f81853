"""The model registry's rows: a user's named models, their versions and aliases.

A version is a frozen copy of one of a job's checkpoints (``best`` or ``last``) with what it was
trained on and how well it did; later epochs of the job do not change it, and deleting the job
leaves it. An alias (``production``) names one version of a model and moves in one request.
Everything is per owner: someone else's model is :class:`NotFound` exactly like a missing one.

Writes to one model (a new version, an alias moved, a version deleted) start with a write to the
model's row, so they take its lock first and run one after another on every backend.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import DATASETS
from cnnlab.datasets.signature import of_meta
from cnnlab.settings import Settings, get_settings
from cnnlab.status import JobStatus
from cnnlab.store import counters
from cnnlab.store.errors import Conflict, NotFound
from cnnlab.store.jobs import get_job
from cnnlab.store.model_names import InvalidInput, check_alias, check_name
from cnnlab.store.model_views import DEFAULT_ALIAS, ModelView, Resolved, VersionView, version_view
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.retention import check_storage
from cnnlab.store.tables import (
    MODEL_DESCRIPTION_LENGTH,
    Checkpoint,
    CheckpointKind,
    EpochMetric,
    Job,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    utcnow,
)

_MODELS = cast(Table, RegisteredModel.__table__)


# -- writes ----------------------------------------------------------------------------------
def register_version(
    session: Session,
    owner_id: int,
    name: str,
    job_id: str,
    kind: CheckpointKind = CheckpointKind.best,
    description: str = "",
    *,
    settings: Settings | None = None,
) -> VersionView:
    """Copy the job's ``kind`` checkpoint as the next version of the owner's model ``name``
    (created on first use). :class:`NotFound` for a job not the owner's, :class:`Conflict` for a
    job without that checkpoint yet, :class:`StorageQuotaExceeded` when the copy would take the
    owner past the storage quota (``settings``: default the process's)."""
    check_name(name)
    kind = CheckpointKind(kind)
    if len(description) > MODEL_DESCRIPTION_LENGTH:
        raise InvalidInput(
            "description", f"{len(description)} characters; at most {MODEL_DESCRIPTION_LENGTH}"
        )
    job = get_job(session, owner_id, job_id)
    ckpt = session.execute(
        select(Checkpoint.epoch, Checkpoint.data).where(
            Checkpoint.job_id == job_id, Checkpoint.kind == kind
        )
    ).first()
    if ckpt is None:
        raise Conflict(
            f"job {job_id!r} has no model yet: its {kind} checkpoint appears after the first epoch",
            job_id=job_id,
        )
    epoch, data = ckpt
    check_storage(
        session, owner_id, settings or get_settings(), adding=len(data), writing="model_version"
    )
    val_accuracy = session.scalar(
        select(EpochMetric.val_accuracy).where(
            EpochMetric.job_id == job_id, EpochMetric.epoch == epoch
        )
    )
    if val_accuracy is None and kind is CheckpointKind.best:
        val_accuracy = job.best_val_accuracy
    # The test split is evaluated once, on the final best weights of a job that succeeded.
    best_epoch = (
        epoch
        if kind is CheckpointKind.best
        else session.scalar(
            select(Checkpoint.epoch).where(
                Checkpoint.job_id == job_id, Checkpoint.kind == CheckpointKind.best
            )
        )
    )
    test_accuracy = (
        job.test_accuracy if job.status == JobStatus.succeeded and best_epoch == epoch else None
    )
    spec: dict[str, Any] = job.spec
    model_id, number = counters.next_version(session, _MODELS, owner_id, name)
    row = ModelVersion(
        model_id=model_id,
        version=number,
        job_id=job_id,
        search_id=job.search_id,
        checkpoint_kind=kind,
        epoch=epoch,
        dataset=str(spec.get("dataset", "")),
        arch=str((spec.get("model") or {}).get("arch", "cnn")),
        val_accuracy=val_accuracy,
        test_accuracy=test_accuracy,
        description=description,
        size_bytes=len(data),
        data=data,
        environment=job.environment,
        signature=job.signature or _signature_of_spec(spec),
    )
    session.add(row)
    session.flush()
    return version_view(name, row, [])


def _signature_of_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """For a job that recorded none (it ran before signatures were recorded): its dataset's."""

    meta = DATASETS.get(str(spec.get("dataset")))
    return None if meta is None else of_meta(meta)


def _lock_model(session: Session, owner_id: int, name: str) -> str:
    """The model's id, its row locked (a write that changes nothing) until the transaction
    ends; :class:`NotFound` if the owner has no such model."""
    table = _MODELS
    model_id = session.scalar(
        update(table)
        .where(table.c.owner_id == owner_id, table.c.name == name)
        .values(last_version=table.c.last_version)
        .returning(table.c.id)
    )
    if model_id is None:
        raise NotFound("model", name)
    return str(model_id)


def _lock_version(session: Session, owner_id: int, name: str, version: int) -> tuple[str, str]:
    """Lock the owner's model ``name`` (:func:`_lock_model`); its id and version's."""
    model_id = _lock_model(session, owner_id, name)
    version_id = session.scalar(
        select(ModelVersion.id).where(
            ModelVersion.model_id == model_id, ModelVersion.version == version
        )
    )
    if version_id is None:
        raise NotFound("model version", f"{name}/{version}")
    return model_id, str(version_id)


def set_alias(
    session: Session, owner_id: int, name: str, alias: str, version: int
) -> tuple[int | None, int]:
    """Point ``alias`` at ``version`` (creating the alias or moving it); the version it pointed
    at before (None if new) and the one it points at now. The event is the caller's
    (:func:`cnnlab.lifecycle.models.move_alias`)."""
    check_alias(alias)
    model_id, version_id = _lock_version(session, owner_id, name, version)
    row = session.scalar(
        select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
    )
    previous = None
    if row is None:
        session.add(ModelAlias(model_id=model_id, alias=alias, version_id=version_id))
    else:
        previous = session.scalar(
            select(ModelVersion.version).where(ModelVersion.id == row.version_id)
        )
        row.version_id = version_id
        row.updated_at = utcnow()
    session.flush()
    return previous, version


def delete_alias(session: Session, owner_id: int, name: str, alias: str) -> None:
    model_id = _lock_model(session, owner_id, name)
    deleted = session.execute(
        delete(ModelAlias)
        .where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
        .returning(ModelAlias.id)
    ).first()
    if deleted is None:
        raise NotFound("model alias", f"{name}@{alias}")


def delete_version(session: Session, owner_id: int, name: str, version: int) -> None:
    """Delete a version no alias points at (:class:`Conflict` names the aliases that do). Its
    number is not given again."""
    _, version_id = _lock_version(session, owner_id, name, version)
    aliases = list(
        session.scalars(
            select(ModelAlias.alias)
            .where(ModelAlias.version_id == version_id)
            .order_by(ModelAlias.alias)
        )
    )
    if aliases:
        raise Conflict(
            f"version {version} of {name!r} is what {', '.join(aliases)} point(s) at: "
            "move or delete the alias first",
            aliases=aliases,
        )
    session.execute(delete(ModelVersion).where(ModelVersion.id == version_id))


def delete_model(session: Session, owner_id: int, name: str) -> None:
    """Delete the model with all its versions and aliases."""
    model_id = _lock_model(session, owner_id, name)
    session.execute(delete(ModelAlias).where(ModelAlias.model_id == model_id))
    session.execute(delete(ModelVersion).where(ModelVersion.model_id == model_id))
    session.execute(delete(RegisteredModel).where(RegisteredModel.id == model_id))


# -- reads -----------------------------------------------------------------------------------
def _model_id(session: Session, owner_id: int, name: str) -> str | None:
    return session.scalar(
        select(RegisteredModel.id).where(
            RegisteredModel.owner_id == owner_id, RegisteredModel.name == name
        )
    )


def _get_model(session: Session, owner_id: int, name: str) -> RegisteredModel:
    model = session.scalar(
        select(RegisteredModel).where(
            RegisteredModel.owner_id == owner_id, RegisteredModel.name == name
        )
    )
    if model is None:
        raise NotFound("model", name)
    return model


def _aliases_by_version(session: Session, model_ids: list[str]) -> dict[str, dict[str, int]]:
    """model id → {alias: version number}."""
    rows = session.execute(
        select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id.in_(model_ids))
        .order_by(ModelAlias.alias)
    )
    out: dict[str, dict[str, int]] = {m: {} for m in model_ids}
    for model_id, alias, version in rows:
        out[model_id][alias] = version
    return out


def list_models(
    session: Session, owner_id: int, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[ModelView]:
    """The owner's models, newest first, each with its newest version and aliases."""
    stmt = select(RegisteredModel).where(RegisteredModel.owner_id == owner_id)
    page = paginate(
        session, stmt, RegisteredModel.created_at, RegisteredModel.id, limit=limit, cursor=cursor
    )
    ids = [m.id for m in page.items]
    stats = {
        model_id: (latest, count)
        for model_id, latest, count in session.execute(
            select(ModelVersion.model_id, func.max(ModelVersion.version), func.count())
            .where(ModelVersion.model_id.in_(ids))
            .group_by(ModelVersion.model_id)
        )
    }
    aliases = _aliases_by_version(session, ids) if ids else {}
    items = [
        ModelView(
            name=m.name,
            created_at=m.created_at,
            latest_version=stats.get(m.id, (None, 0))[0],
            version_count=stats.get(m.id, (None, 0))[1],
            aliases=aliases.get(m.id, {}),
        )
        for m in page.items
    ]
    return Page(items, page.next)


def get_model(session: Session, owner_id: int, name: str) -> ModelView:
    """The model with all its versions, newest first, and its aliases."""
    model = _get_model(session, owner_id, name)
    aliases = _aliases_by_version(session, [model.id])[model.id]
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.version.desc())
    )
    versions = [version_view(name, r, by_version.get(r.version, [])) for r in rows]
    return ModelView(
        name=model.name,
        created_at=model.created_at,
        latest_version=versions[0].version if versions else None,
        version_count=len(versions),
        aliases=aliases,
        versions=versions,
    )


def _of_version(stmt: Any, owner_id: int, name: str, version: int) -> Any:
    """``stmt`` (a select from model versions) narrowed to the owner's ``name``/``version``."""
    return stmt.join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id).where(
        RegisteredModel.owner_id == owner_id,
        RegisteredModel.name == name,
        ModelVersion.version == version,
    )


def _of_one_version(session: Session, what: Any, owner_id: int, name: str, version: int) -> Any:
    """``what`` (the version row, or one of its columns) of the owner's ``name``/``version``;
    :class:`NotFound` if there is none."""
    found = session.scalar(_of_version(select(what), owner_id, name, version))
    if found is None:
        raise NotFound("model version", f"{name}/{version}")
    return found


def _version_row(session: Session, owner_id: int, name: str, version: int) -> ModelVersion:
    return cast(ModelVersion, _of_one_version(session, ModelVersion, owner_id, name, version))


def get_version(session: Session, owner_id: int, name: str, version: int) -> VersionView:
    row = _version_row(session, owner_id, name, version)
    aliases = session.scalars(select(ModelAlias.alias).where(ModelAlias.version_id == row.id))
    view = version_view(name, row, list(aliases))
    spec = session.scalar(select(Job.spec).where(Job.id == row.job_id, Job.owner_id == owner_id))
    view.init = (spec or {}).get("init")
    return view


def version_id(session: Session, owner_id: int, name: str, version: int) -> str:
    """The id of one of the owner's versions (never reused: a cache key for what is made from
    its frozen weights)."""
    return str(_of_one_version(session, ModelVersion.id, owner_id, name, version))


def version_data(session: Session, owner_id: int, name: str, version: int) -> bytes:
    """The checkpoint bytes of one version."""
    return bytes(_of_one_version(session, ModelVersion.data, owner_id, name, version))


def data_by_id(session: Session, version_id: str) -> bytes:
    """The checkpoint bytes of a version found by :func:`resolve` (its owner already checked)."""
    data = session.scalar(select(ModelVersion.data).where(ModelVersion.id == version_id))
    if data is None:
        raise NotFound("model version", version_id)
    return bytes(data)


# Predictions by name ask for these on every request: built once.
_RESOLVE_COLUMNS = (
    ModelVersion.id,
    ModelVersion.version,
    ModelVersion.job_id,
    ModelVersion.epoch,
)
_BY_NUMBER = (
    select(*_RESOLVE_COLUMNS)
    .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
    .where(
        RegisteredModel.owner_id == bindparam("owner"),
        RegisteredModel.name == bindparam("name"),
        ModelVersion.version == bindparam("version"),
    )
)
_BY_ALIAS = (
    select(*_RESOLVE_COLUMNS)
    .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
    .join(RegisteredModel, RegisteredModel.id == ModelAlias.model_id)
    .where(
        RegisteredModel.owner_id == bindparam("owner"),
        RegisteredModel.name == bindparam("name"),
        ModelAlias.alias == bindparam("alias"),
    )
)
# The default alias's version if it is set, else the newest: one query.
_DEFAULT = (
    select(*_RESOLVE_COLUMNS, ModelAlias.alias)
    .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
    .outerjoin(
        ModelAlias,
        (ModelAlias.version_id == ModelVersion.id) & (ModelAlias.alias == DEFAULT_ALIAS),
    )
    .where(
        RegisteredModel.owner_id == bindparam("owner"), RegisteredModel.name == bindparam("name")
    )
    .order_by(ModelAlias.id.is_(None), ModelVersion.version.desc())
    .limit(1)
)


def model_id_of(session: Session, owner_id: int, name: str) -> str:
    """The id of the owner's model ``name`` (:class:`NotFound` otherwise)."""
    model_id = _model_id(session, owner_id, name)
    if model_id is None:
        raise NotFound("model", name)
    return model_id


def signature_of(session: Session, version_id: str) -> dict[str, Any] | None:
    return session.scalar(select(ModelVersion.signature).where(ModelVersion.id == version_id))


def resolve(
    session: Session,
    owner_id: int,
    name: str,
    *,
    alias: str | None = None,
    version: int | None = None,
) -> Resolved:
    """The version ``alias`` or ``version`` names; with neither, the one alias ``production``
    names, else the newest. Read afresh on every call: a moved alias counts at once."""
    params: dict[str, Any] = {"owner": owner_id, "name": name}
    if alias is not None and version is not None:
        raise InvalidInput("alias", "give an alias or a version, not both")
    chosen: str | None = alias
    found: Any
    if version is not None:
        found = session.execute(_BY_NUMBER, {**params, "version": version}).first()
        what = f"{name}/{version}"
    elif alias is not None:
        found = session.execute(_BY_ALIAS, {**params, "alias": alias}).first()
        what = f"{name}@{alias}"
    else:
        found = session.execute(_DEFAULT, params).first()
        chosen = None if found is None else found[4]
        what = name
    row = None if found is None else (str(found[0]), int(found[1]), str(found[2]), int(found[3]))
    if row is None:
        if _model_id(session, owner_id, name) is None:
            raise NotFound("model", name)
        if alias is None and version is None:
            raise Conflict(f"model {name!r} has no versions", name=name)
        raise NotFound("model version", what)
    version_id, number, job_id, epoch = row
    return Resolved(version_id, name, number, chosen, job_id, epoch)
