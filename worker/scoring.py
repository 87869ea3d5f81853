"""Evaluations, comparisons and batch predictions: jobs of another ``kind`` than ``train``,
claimed, leased, cancelled and finished through the same lifecycle as training jobs.

The job's spec names the registered model version(s) by id (frozen weights) and the data; the
work runs here with no session held, and ends with :func:`lifecycle.finish_job` carrying the
``result``. A batch prediction writes its rows chunk by chunk under the attempt's fence, so a
new attempt (after a kill) resumes after the last chunk that committed.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import lifecycle
from cnnlab.datasets.catalog import uploads_in_scope
from cnnlab.datasets.signature import of_checkpoint
from cnnlab.engine import batch, metrics
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.environment import receipt
from cnnlab.engine.evaluation import Stopped, report, score
from cnnlab.engine.evaluation_data import load_labelled
from cnnlab.engine.predict import Predictor
from cnnlab.engine.training import resolve_device
from cnnlab.errors import CnnlabError
from cnnlab.lifecycle import Claim, LeaseSettings
from cnnlab.settings import get_settings
from cnnlab.store import model_versions as registry
from cnnlab.store.batch_rows import row_counts
from cnnlab.store.db import session_scope
from cnnlab.store.job_inputs import write_input
from cnnlab.store.model_versions import data_by_id
from cnnlab.store.tables import Job, JobStatus
from worker.datasets import uploaded_datasets
from worker.leases import Lease, finish, stop_poller

if TYPE_CHECKING:
    import numpy as np

    from cnnlab.engine.checkpoints import CheckpointDoc
    from cnnlab.settings import Settings

logger = logging.getLogger(__name__)

# Seconds between two writes of an evaluation's progress (the last one is always written).
PROGRESS_S = 0.5
# Disagreements between two models listed in a comparison's result (all are counted).
DISAGREEMENTS_LISTED = 100


class Cancelled(Exception):
    pass


def run_scoring(
    job_id: str, held: Claim, worker_id: str, config: LeaseSettings
) -> JobStatus | None:
    """Run one claimed evaluate, compare or batch_predict job to its end."""
    lease = Lease(job_id, held.attempt, config)
    logger.info("%s job %s started on %s (attempt %d)", held.kind, job_id, worker_id, lease.attempt)
    lease.start()
    try:
        status, fields = _outcome(lease, held)
    finally:
        lease.stop()
    if lease.lost or not finish(job_id, status, lease.attempt, **fields):
        logger.warning("job %s was taken over by another worker; this attempt stops", job_id)
        return None
    logger.info("%s job %s %s", held.kind, job_id, status)
    return status


def _outcome(lease: Lease, held: Claim) -> tuple[JobStatus, dict[str, Any]]:
    run = {"evaluate": _evaluate, "compare": _compare, "batch_predict": _batch_predict}[held.kind]
    try:
        with uploads_in_scope(_uploads(lease.job_id, held.spec)):
            result = run(lease, held.spec)
        return JobStatus.succeeded, {"result": result}
    except Cancelled:
        return JobStatus.cancelled, {}
    except CnnlabError as exc:
        logger.info("job %s failed: %s", lease.job_id, exc.message)
        return JobStatus.failed, {"error": exc.to_dict()}
    except Exception as exc:
        log_ref = uuid.uuid4().hex[:12]
        logger.exception("job %s failed unexpectedly [log_ref=%s]", lease.job_id, log_ref)
        message = f"internal error ({type(exc).__name__})"
        return JobStatus.failed, {
            "error": {"type": "internal", "message": message, "log_ref": log_ref}
        }


def _uploads(job_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The uploaded dataset version the job scores (its spec's pinned ``NAME@V``), its tensors
    fetched into this worker's cache; {} for a built-in or an archive."""

    dataset = spec.get("dataset")
    return uploaded_datasets(job_id, dataset) if dataset else {}


def _checkpoint(version_id: str) -> CheckpointDoc:
    with session_scope() as session:
        data = data_by_id(session, version_id)
    return loads(data)


def _settings() -> Settings:
    return get_settings()


def _receipt(lease: Lease, spec: dict[str, Any], ckpt: CheckpointDoc) -> Any:
    """Record the run's receipt and the model's signature; the device it runs on."""
    device = resolve_device(str(spec.get("device", "auto")))
    dataset = spec.get("dataset")
    environment = receipt(
        device=device,
        dataset=str(dataset) if dataset else "",
        seed=None,
        deterministic=False,
        settings=_settings(),
    )
    if not dataset:
        environment["dataset"] = None
    with session_scope() as session:
        lifecycle.record_receipt(
            session, lease.job_id, lease.attempt, environment, of_checkpoint(ckpt)
        )
    return device


def _scores(
    lease: Lease, ckpt: CheckpointDoc, data: Any, device: Any, progress: Callable[[int], None]
) -> tuple[np.ndarray, np.ndarray]:
    stop = stop_poller(lease)
    try:
        return score(ckpt, data, device, should_stop=stop, progress=lambda done, _: progress(done))
    except Stopped:
        raise Cancelled from None


def _progress(lease: Lease, total: int, offset: int = 0) -> Callable[[int], None]:
    """Record ``offset + done`` of ``total`` images scored (at most every :data:`PROGRESS_S`,
    and the last), renewing the lease; a write the fence refuses marks the lease lost."""
    last = 0.0

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if offset + done < total and now - last < PROGRESS_S:
            return
        last = now
        with session_scope() as session:
            held = lifecycle.record_progress(
                session,
                lease.job_id,
                lease.attempt,
                offset + done,
                total,
                lease.config.lease_seconds,
            )
        lease.lost = lease.lost or not held

    return report


def _evaluate(lease: Lease, spec: dict[str, Any]) -> dict[str, Any]:
    ckpt = _checkpoint(spec["version_id"])
    device = _receipt(lease, spec, ckpt)
    data = load_labelled(spec["dataset"], _settings())
    true, probs = _scores(lease, ckpt, data, device, _progress(lease, len(data.images)))
    result = report(true, probs, list(ckpt["dataset"]["class_names"]), data.images)
    return {
        "model": spec["model"],
        "version": spec["version"],
        "dataset": spec["dataset"],
        **result,
    }


def _compare(lease: Lease, spec: dict[str, Any]) -> dict[str, Any]:
    a_ckpt, b_ckpt = _checkpoint(spec["a"]["version_id"]), _checkpoint(spec["b"]["version_id"])
    device = _receipt(lease, spec, b_ckpt)
    data = load_labelled(spec["dataset"], _settings())
    n = len(data.images)
    a_true, a_probs = _scores(lease, a_ckpt, data, device, _progress(lease, 2 * n))
    b_true, b_probs = _scores(lease, b_ckpt, data, device, _progress(lease, 2 * n, n))
    a_names = list(a_ckpt["dataset"]["class_names"])
    b_names = list(b_ckpt["dataset"]["class_names"])
    a, b = metrics.summary(a_true, a_probs, a_names), metrics.summary(b_true, b_probs, b_names)
    a_pred, b_pred = a_probs.argmax(1), b_probs.argmax(1)
    a_right, b_right = a_pred == a_true, b_pred == b_true
    test = metrics.mcnemar(a_right, b_right)
    differ = (a_right != b_right).nonzero()[0]
    true_names = [data.class_names[i] for i in data.labels.tolist()]
    disagreements = [
        {
            "index": int(i),
            "true": true_names[i],
            "a": a_names[int(a_pred[i])],
            "b": b_names[int(b_pred[i])],
            "right": "a" if a_right[i] else "b",
        }
        for i in differ[:DISAGREEMENTS_LISTED]
    ]
    per_class = {
        name: {
            key: b["per_class"][name][key] - a["per_class"][name][key]
            for key in ("precision", "recall", "f1")
        }
        for name in a["per_class"]
        if name in b["per_class"]
    }
    promoted = None
    if spec.get("promote"):
        promoted = test.verdict == "b is better" and _promote(lease, spec)
    return {
        "model": spec["model"],
        "dataset": spec["dataset"],
        **({} if promoted is None else {"promoted": promoted, "alias": spec["promote"]}),
        "a": {"version": spec["a"]["version"], "label": spec["a"]["label"], **a},
        "b": {"version": spec["b"]["version"], "label": spec["b"]["label"], **b},
        "accuracy_difference": b["accuracy"] - a["accuracy"],
        "per_class": per_class,
        "disagreement_count": len(differ),
        "disagreements": disagreements,
        "mcnemar": test.to_dict(),
        "verdict": test.verdict,
    }


def _promote(lease: Lease, spec: dict[str, Any]) -> bool:
    """Point the comparison's alias at b, if this attempt still holds the job."""
    with session_scope() as session:
        if not lifecycle.holds(session, lease.job_id, lease.attempt):
            return False
        owner_id = session.get_one(Job, lease.job_id).owner_id
        registry.set_alias(session, owner_id, spec["model"], spec["promote"], spec["b"]["version"])
    logger.info(
        "job %s: %s moved to version %s", lease.job_id, spec["promote"], spec["b"]["version"]
    )
    return True


def _batch_predict(lease: Lease, spec: dict[str, Any]) -> dict[str, Any]:
    timings = batch.Timings()
    ckpt = _checkpoint(spec["version_id"])
    device = _receipt(lease, spec, ckpt)
    predictor = Predictor(ckpt, device=device)
    settings = _settings()
    with session_scope() as session:
        start = lifecycle.rows_done(session, lease.job_id)
    if start:
        logger.info("batch job %s resumes at input %d", lease.job_id, start)
    stop = stop_poller(lease)
    top_k = int(spec.get("top_k", 5))
    with tempfile.TemporaryDirectory(prefix="cnnlab-batch-") as tmp:
        if spec.get("dataset"):
            data = load_labelled(spec["dataset"], settings)
            batch.check_dataset_images(ckpt, data.shape, spec["dataset"])
            items = batch.dataset_items(spec["dataset"], data.images, start)
        else:
            path = Path(tmp) / "input"
            with session_scope() as session, path.open("wb") as out:
                write_input(session, lease.job_id, out)
            items = batch.archive_items(
                path,
                start,
                settings.batch_max_files,
                settings.dataset_max_uncompressed_bytes,
                settings.dataset_max_ratio,
            )
        timings.setup = time.perf_counter() - timings.started
        rows = batch.scored_chunks(predictor, items, top_k, settings.batch_chunk, timings)
        _write_rows(lease, stop, rows, timings)
    with session_scope() as session:
        total, failed = row_counts(session, lease.job_id)
    logger.info("batch job %s: %s", lease.job_id, timings.line(total - start))
    return {
        "model": spec["model"],
        "version": spec["version"],
        "count": total,
        "predicted": total - failed,
        "skipped": failed,
    }


def _write_rows(
    lease: Lease,
    stop: Callable[[], bool],
    chunks: Iterator[list[dict[str, Any]]],
    timings: batch.Timings,
) -> None:
    """Commit each chunk's rows on a thread of its own while the next chunk is scored (the
    insert and the commit's I/O overlap the forward pass). :class:`Cancelled` once the job is
    cancelled or this attempt lost it (a chunk refused by the fence wrote nothing)."""

    def write(rows: list[dict[str, Any]]) -> bool:
        with session_scope() as session:
            return lifecycle.record_batch_rows(
                session, lease.job_id, lease.attempt, rows, lease.config.lease_seconds
            )

    def written(pending: Future[bool] | None) -> None:
        started = time.perf_counter()
        kept = pending is None or pending.result()
        timings.write += time.perf_counter() - started
        if not kept:
            lease.lost = True
            raise Cancelled

    with ThreadPoolExecutor(1, "rows") as writer:
        pending: Future[bool] | None = None
        for rows in chunks:
            written(pending)
            if stop():
                raise Cancelled
            pending = writer.submit(write, rows)
        written(pending)
