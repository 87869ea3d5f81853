"""New evaluations, comparisons and batch predictions: jobs of their own ``kind``, added as
``queued`` and sent to the workers after commit, like training jobs (:func:`submit_job`).

The model versions they score are resolved here, once: the job's spec records the version's id
and number, so moving an alias afterwards does not change what a queued job scores. The data's
classes and image shape are checked against the version's signature before anything is queued.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cnnlab.datasets.signature import check_images, label_map
from cnnlab.lifecycle.submit import Enqueue, send_after_commit
from cnnlab.settings import Settings
from cnnlab.status import JobStatus
from cnnlab.store import model_versions as registry
from cnnlab.store import quota
from cnnlab.store.job_inputs import add_input
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


def _resolve(
    session: Session, owner_id: int, name: str, ref: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The version a reference names (as the job's spec records it) and its signature."""
    found = registry.resolve(
        session, owner_id, name, alias=ref.get("alias"), version=ref.get("version")
    )
    label = found.alias or f"v{found.version}"
    record = {"version": found.version, "version_id": found.version_id, "label": label}
    return record, registry.signature_of(session, found.version_id)


def _check_dataset(signature: dict[str, Any] | None, dataset: str) -> None:
    """The set's classes must be the model's (a subset is fine) and its images its shape."""
    from cnnlab.datasets.catalog import get_meta
    from cnnlab.engine.evaluation_data import check_ref, class_names

    check_ref(dataset)
    if signature is None:
        return  # a version without a recorded signature: the worker checks its checkpoint
    what = f"dataset {dataset!r}"
    check_images(signature, get_meta(dataset).shape, what)
    label_map(signature, class_names(dataset), what)


def _add(
    session: Session,
    owner_id: int,
    kind: str,
    model_id: str,
    spec: dict[str, Any],
    enqueue: Enqueue | None,
    max_active: int | None,
) -> Job:
    quota.reserve(session, owner_id, 1, max_active)
    job = Job(owner_id=owner_id, spec=spec, kind=kind, model_id=model_id, status=JobStatus.queued)
    session.add(job)
    session.flush()
    send_after_commit(session, job.id, DEVICE, enqueue)
    return job


def submit_evaluation(
    session: Session,
    owner_id: int,
    name: str,
    ref: dict[str, Any],
    dataset: str,
    *,
    enqueue: Enqueue | None,
    max_active: int | None = None,
) -> Job:
    """Score one version of ``name`` on ``dataset``'s labelled images."""
    model_id = registry.model_id_of(session, owner_id, name)
    version, signature = _resolve(session, owner_id, name, ref)
    _check_dataset(signature, dataset)
    spec = {"model": name, **version, "dataset": dataset, "device": DEVICE}
    return _add(session, owner_id, "evaluate", model_id, spec, enqueue, max_active)


def submit_comparison(
    session: Session,
    owner_id: int,
    name: str,
    a: dict[str, Any],
    b: dict[str, Any],
    dataset: str,
    *,
    enqueue: Enqueue | None,
    max_active: int | None = None,
    promote: str | None = None,
) -> Job:
    """Score versions ``a`` (the champion) and ``b`` (the challenger) on the same images;
    with ``promote``, the worker then points that alias at ``b`` if b is better."""
    model_id = registry.model_id_of(session, owner_id, name)
    a_version, a_signature = _resolve(session, owner_id, name, a)
    b_version, b_signature = _resolve(session, owner_id, name, b)
    _check_dataset(a_signature, dataset)
    _check_dataset(b_signature, dataset)
    spec = {"model": name, "a": a_version, "b": b_version, "dataset": dataset, "device": DEVICE}
    if promote is not None:
        spec["promote"] = promote
    return _add(session, owner_id, "compare", model_id, spec, enqueue, max_active)


def submit_batch_prediction(
    session: Session,
    owner_id: int,
    name: str,
    ref: dict[str, Any],
    *,
    dataset: str | None = None,
    archive: bytes | None = None,
    top_k: int = 5,
    settings: Settings,
    enqueue: Enqueue | None,
    max_active: int | None = None,
) -> Job:
    """Predict every image of ``archive`` (the bytes of a zip or tar) or of ``dataset``."""
    from cnnlab.store.retention import check_storage

    if (dataset is None) == (archive is None):
        raise registry.InvalidInput("dataset", "give an archive of images or a dataset, not both")
    if not 1 <= top_k <= MAX_TOP_K:
        raise registry.InvalidInput("top_k", f"from 1 to {MAX_TOP_K}")
    check_storage(session, owner_id, settings)
    model_id = registry.model_id_of(session, owner_id, name)
    version, signature = _resolve(session, owner_id, name, ref)
    if dataset is not None and signature is not None:
        from cnnlab.datasets.catalog import get_meta
        from cnnlab.engine.evaluation_data import check_ref

        check_images(signature, get_meta(check_ref(dataset)).shape, f"dataset {dataset!r}")
    source: dict[str, Any] = (
        {"dataset": dataset} if dataset else {"archive_bytes": len(archive or b"")}
    )
    spec = {"model": name, **version, **source, "top_k": top_k, "device": DEVICE}
    job = _add(session, owner_id, "batch_predict", model_id, spec, enqueue, max_active)
    if archive is not None:
        add_input(session, job.id, archive)
    return job
