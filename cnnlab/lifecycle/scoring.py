"""New evaluations, comparisons and batch predictions: jobs of their own ``kind``, added as
``queued`` and sent to the workers after commit, like training jobs (:func:`submit_job`).

The model versions they score are resolved here, once: the job's spec records the version's id
and number, so moving an alias afterwards does not change what a queued job scores. The data's
classes and image shape are checked against the version's signature before anything is queued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import get_meta, uploads_in_scope
from cnnlab.datasets.signature import check_images
from cnnlab.engine.evaluation_data import check_ref
from cnnlab.lifecycle.scoring_specs import (
    DEVICE,
    MAX_TOP_K,
    add_scoring_job,
    check_dataset,
    comparison_spec,
    pin_dataset,
    resolve_version,
)
from cnnlab.lifecycle.submit import Enqueue, send_after_commit
from cnnlab.settings import Settings
from cnnlab.store import model_versions as registry
from cnnlab.store.job_inputs import add_input
from cnnlab.store.retention import check_storage
from cnnlab.store.tables import Job


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
    version, signature = resolve_version(session, owner_id, name, ref)
    dataset, metas = pin_dataset(session, owner_id, dataset)
    with uploads_in_scope(metas):
        check_dataset(signature, dataset)
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
    model_id, spec = comparison_spec(session, owner_id, name, a, b, dataset, promote)
    return _add(session, owner_id, "compare", model_id, spec, enqueue, max_active)


def submit_batch_prediction(
    session: Session,
    owner_id: int,
    name: str,
    ref: dict[str, Any],
    *,
    dataset: str | None = None,
    archive: tuple[Path, str] | None = None,
    top_k: int = 5,
    settings: Settings,
    enqueue: Enqueue | None,
    max_active: int | None = None,
) -> Job:
    """Predict every image of ``archive`` (a zip or tar file and its sha256, stored as the
    job's input and counted in the owner's storage until the job ends) or of ``dataset``."""

    if (dataset is None) == (archive is None):
        raise registry.InvalidInput("dataset", "give an archive of images or a dataset, not both")
    if not 1 <= top_k <= MAX_TOP_K:
        raise registry.InvalidInput("top_k", f"from 1 to {MAX_TOP_K}")
    size = archive[0].stat().st_size if archive is not None else 0
    check_storage(
        session, owner_id, settings, adding=size, writing="batch archive" if size else None
    )
    model_id = registry.model_id_of(session, owner_id, name)
    version, signature = resolve_version(session, owner_id, name, ref)
    if dataset is not None:
        dataset, metas = pin_dataset(session, owner_id, dataset)
        with uploads_in_scope(metas):
            check_ref(dataset)
            if signature is not None:
                check_images(signature, get_meta(dataset).shape, f"dataset {dataset!r}")
    source: dict[str, Any] = {"dataset": dataset} if dataset else {"archive_bytes": size}
    spec = {"model": name, **version, **source, "top_k": top_k, "device": DEVICE}
    job = _add(session, owner_id, "batch_predict", model_id, spec, enqueue, max_active)
    if archive is not None:
        add_input(session, job.id, *archive)
    return job


def _add(
    session: Session,
    owner_id: int,
    kind: str,
    model_id: str,
    spec: dict[str, Any],
    enqueue: Enqueue | None,
    max_active: int | None,
) -> Job:
    job = add_scoring_job(session, owner_id, kind, model_id, spec, max_active)
    send_after_commit(session, job.id, DEVICE, enqueue)
    return job
