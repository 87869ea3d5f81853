"""What an evaluation, comparison or batch prediction scores, resolved once: the model
versions (the job's spec records each version's id and number, so moving an alias afterwards
does not change what a queued job scores) and the data, checked against the versions'
signatures; and the job row itself. Sending it is :mod:`cnnlab.lifecycle.scoring`'s (a search's
winner queues its comparison here without a message: the sweeper sends it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import DATASETS, get_meta, uploads_in_scope
from cnnlab.datasets.signature import check_images, label_map
from cnnlab.engine.evaluation_data import check_ref, class_names
from cnnlab.lifecycle import quota
from cnnlab.lifecycle.datasets import meta_of
from cnnlab.status import JobStatus
from cnnlab.store import datasets
from cnnlab.store import model_versions as registry
from cnnlab.store.tables import Job

KINDS = ("evaluate", "compare", "batch_predict")
# Scoring runs wherever a worker takes it: on its GPU if it has one.
DEVICE = "auto"
MAX_TOP_K = 20


def version_ref(value: int | str | None, field: str) -> dict[str, Any]:
    """``4`` or ``"4"``: a version number; any other string: an alias."""
    if isinstance(value, bool) or value is None:
        raise registry.InvalidInput(field, "give a version number or an alias")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return {"version": int(value)}
    registry.check_alias(value, field)
    return {"alias": value}


def resolve_version(
    session: Session, owner_id: int, name: str, ref: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The version a reference names (as the job's spec records it) and its signature."""
    found = registry.resolve(
        session, owner_id, name, alias=ref.get("alias"), version=ref.get("version")
    )
    label = found.alias or f"v{found.version}"
    record = {"version": found.version, "version_id": found.version_id, "label": label}
    return record, registry.signature_of(session, found.version_id)


def pin_dataset(session: Session, owner_id: int, dataset: str) -> tuple[str, dict[str, Any]]:
    """``dataset`` as the job's spec records it: a built-in as it is, an upload of the owner's
    pinned to ``NAME@V`` (a queued job scores the version it was checked against); and the
    metas to put in scope while checking it (:func:`uploads_in_scope`)."""
    if dataset in DATASETS:
        return dataset, {}
    resolved = datasets.resolve(session, owner_id, dataset)
    return resolved.ref, {resolved.ref: meta_of(resolved.ref, resolved.version)}


def check_dataset(signature: dict[str, Any] | None, dataset: str) -> None:
    """The set's classes must be the model's (a subset is fine) and its images its shape (an
    upload's meta in scope)."""

    check_ref(dataset)
    if signature is None:
        return  # a version without a recorded signature: the worker checks its checkpoint
    what = f"dataset {dataset!r}"
    check_images(signature, get_meta(dataset).shape, what)
    label_map(signature, class_names(dataset), what)


def add_scoring_job(
    session: Session,
    owner_id: int,
    kind: str,
    model_id: str,
    spec: dict[str, Any],
    max_active: int | None,
) -> Job:
    """The job, added as ``queued`` (flushed; the caller sends it after commit, if at all)."""
    quota.reserve(session, owner_id, 1, max_active)
    job = Job(owner_id=owner_id, spec=spec, kind=kind, model_id=model_id, status=JobStatus.queued)
    session.add(job)
    session.flush()
    return job


def comparison_spec(
    session: Session,
    owner_id: int,
    name: str,
    a: dict[str, Any],
    b: dict[str, Any],
    dataset: str,
    promote: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The model's id and the spec of a comparison of versions ``a`` (the champion) and ``b``
    (the challenger) on ``dataset``; with ``promote``, the worker then points that alias at
    ``b`` if b is better."""
    model_id = registry.model_id_of(session, owner_id, name)
    a_version, a_signature = resolve_version(session, owner_id, name, a)
    b_version, b_signature = resolve_version(session, owner_id, name, b)
    dataset, metas = pin_dataset(session, owner_id, dataset)
    with uploads_in_scope(metas):
        check_dataset(a_signature, dataset)
        check_dataset(b_signature, dataset)
    spec = {"model": name, "a": a_version, "b": b_version, "dataset": dataset, "device": DEVICE}
    if promote is not None:
        spec["promote"] = promote
    return model_id, spec
