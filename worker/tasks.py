"""The training task: a thin adapter between the job rows and :func:`cnnlab.engine.training.fit`.

Every database touch is its own short session through :mod:`cnnlab.lifecycle`; no session is
held while training and no ORM object leaves one. The training code is imported with this module:
the worker's parent process loads it once and its pool processes inherit it.

The message only wakes a worker; the job row decides. The worker claims the job (a queued one, or
a running one whose lease expired because its worker died), renews the lease while it trains, and
presents its attempt number with every write. If the job was taken over meanwhile, the writes are
refused and this worker stops without touching the row again.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import shared_task

from cnnlab import lifecycle
from cnnlab.datasets.catalog import get_meta, uploads_in_scope
from cnnlab.datasets.signature import of_meta
from cnnlab.engine import checkpoints as checkpoint
from cnnlab.engine.checkpoints import CheckpointDoc
from cnnlab.engine.evaluation import job_report
from cnnlab.engine.packed import PackedTrial, fit_packed
from cnnlab.engine.training import EpochReport, FitResult, fit, resolve_device, run_receipt
from cnnlab.errors import CnnlabError
from cnnlab.lifecycle import LeaseSettings
from cnnlab.settings import get_settings
from cnnlab.spec.budget import checked_time_limit
from cnnlab.spec.train import TrainSpec
from cnnlab.store import jobs
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JOB_KIND_TRAIN, JobStatus
from worker.app import TRAIN_TASK
from worker.datasets import uploaded_datasets
from worker.leases import Lease, TimeLimit, claim_with, stop_poller
from worker.queue import enqueue_job
from worker.scoring import run_scoring

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger(__name__)


@shared_task(name=TRAIN_TASK, bind=True)
def train_job(self: Task, job_id: str) -> None:
    worker_id = f"{self.request.hostname or 'worker'}/{os.getpid()}"
    status = run_job(job_id, worker_id)
    if status is None and (self.request.delivery_info or {}).get("redelivered"):
        # The broker handed the job out again while another claim is live (or it ended); the
        # sweeper sends it again once that claim's lease expires.
        logger.warning("job %s was redelivered but is held or ended; left as it is", job_id)


def run_job(job_id: str, worker_id: str, config: LeaseSettings | None = None) -> JobStatus | None:
    """Claim, train and finish one job, with the trials of its search that train packed with it
    (:func:`pack_size`); returns its final status (None: not ours to run, or taken over by
    another worker while this one ran it)."""
    config = config or LeaseSettings()
    held = claim_with(lifecycle.claim, job_id, worker_id, config)
    if held is None:
        logger.info("job %s is not claimable (held elsewhere or ended); skipping", job_id)
        return None
    if held.kind != JOB_KIND_TRAIN:
        return run_scoring(job_id, held, worker_id, config)
    claims = [(job_id, held)]
    size = pack_size(held.spec)
    if size > 1:
        claims += claim_with(lifecycle.claim_siblings, job_id, worker_id, config, limit=size - 1)
    leases = [Lease(claimed, c.attempt, config) for claimed, c in claims]
    for lease in leases:
        logger.info("job %s started on %s (attempt %d)", lease.job_id, worker_id, lease.attempt)
        lease.start()
    if len(leases) > 1:
        logger.info("jobs %s train as one pack", _ids(leases))
    try:
        outcomes = _outcomes(leases, [c.spec for _, c in claims])
    finally:
        for lease in leases:
            lease.stop()
    statuses = [
        _end(lease, status, fields)
        for lease, (status, fields) in zip(leases, outcomes, strict=True)
    ]
    _next_trials(job_id)
    return statuses[0]


def pack_size(spec: dict[str, Any]) -> int:
    """How many trials this worker trains packed with ``spec``'s: ``CNNLAB_PACK_TRIALS`` on a
    GPU (and on a CPU with ``CNNLAB_PACK_ON_CPU``), else 1."""
    settings = get_settings()
    if settings.pack_trials < 2:
        return 1
    try:
        device = resolve_device(str(spec.get("device", "auto")))
    except CnnlabError:
        return 1  # training reports it
    return settings.pack_trials if device.type == "cuda" or settings.pack_on_cpu else 1


def _end(lease: Lease, trained: JobStatus, fields: dict[str, Any]) -> JobStatus | None:
    """Report what happened to the attempt; the lifecycle says how the job ends."""
    with session_scope() as session:
        status = lifecycle.end_attempt(
            session,
            lease.job_id,
            lease.attempt,
            trained,
            pruned=lease.pruned,
            lost=lease.lost,
            **fields,
        )
    if status is None:
        logger.warning("job %s was taken over by another worker; this attempt stops", lease.job_id)
        return None
    logger.info("job %s %s", lease.job_id, status)
    return status


def _next_trials(job_id: str) -> None:
    """A search's trial ended: its search may start the next ones (the sweeper does it too,
    should this worker die first)."""
    try:
        with session_scope() as session:
            lifecycle.advance_search_of(session, job_id, enqueue=enqueue_job)
    except Exception:
        logger.warning("job %s: its search's next trials wait for a sweep", job_id, exc_info=True)


Outcome = tuple[JobStatus, dict[str, Any]]


def _outcomes(leases: list[Lease], specs: list[dict[str, Any]]) -> list[Outcome]:
    """Each job's final status and the fields to record with it; an error that ends the whole
    pack (a bad spec, out of memory, a bug) fails every job of it."""
    try:
        results = _train(leases, specs)
    except CnnlabError as exc:
        logger.info("jobs %s failed: %s", _ids(leases), exc.message)
        return [_failed(exc)] * len(leases)
    except Exception as exc:
        log_ref = uuid.uuid4().hex[:12]
        logger.exception("jobs %s failed unexpectedly [log_ref=%s]", _ids(leases), log_ref)
        error = {"type": "internal", "message": f"internal error ({type(exc).__name__})"}
        return [(JobStatus.failed, {"error": {**error, "log_ref": log_ref}})] * len(leases)
    return [_failed(r) if isinstance(r, CnnlabError) else r for r in results]


def _failed(exc: CnnlabError) -> Outcome:
    return JobStatus.failed, {"error": exc.to_dict()}


def _ids(leases: list[Lease]) -> str:
    return ", ".join(lease.job_id for lease in leases)


Trained = Outcome | CnnlabError


def _train(leases: list[Lease], spec_dicts: list[dict[str, Any]]) -> list[Trained]:
    """Each job's outcome; a job whose spec fails the budget check now is not trained."""
    specs = [TrainSpec.model_validate(d) for d in spec_dicts]
    # A pack's trials share one dataset; an upload's tensors are fetched to this worker first.
    with uploads_in_scope(uploaded_datasets(leases[0].job_id, specs[0].dataset)):
        return _checked(leases, specs)


def _checked(leases: list[Lease], specs: list[TrainSpec]) -> list[Trained]:
    """Each job's outcome: refused if its spec fails the budget check now, else trained."""
    outcomes: dict[int, Trained] = {}
    seconds: dict[int, float | None] = {}
    for i, (lease, checked) in enumerate(zip(leases, map(_time_limit_seconds, specs), strict=True)):
        if isinstance(checked, CnnlabError):
            logger.info("job %s refused before training: %s", lease.job_id, checked.message)
            outcomes[i] = checked
        else:
            seconds[i] = checked
    if seconds:
        ready = list(seconds)
        results = _train_ready(
            [leases[i] for i in ready], [specs[i] for i in ready], list(seconds.values())
        )
        outcomes.update(zip(ready, results, strict=True))
    return [outcomes[i] for i in range(len(specs))]


def _train_ready(
    leases: list[Lease], specs: list[TrainSpec], seconds: list[float | None]
) -> list[Trained]:
    receipts = [_record_receipt(lease, spec) for lease, spec in zip(leases, specs, strict=True)]
    # A pack trains its trials in about the time they take one after another, at most.
    limits = [TimeLimit(s, scale=len(specs)) for s in seconds]
    stops = [stop_poller(lease, limit) for lease, limit in zip(leases, limits, strict=True)]
    resumes = [_resume(lease.job_id) for lease in leases]
    if len(leases) == 1:
        init = _init_weights(leases[0].job_id, specs[0]) if resumes[0] is None else None
        alone = fit(
            specs[0],
            on_epoch=_on_epoch(leases[0]),
            should_stop=stops[0],
            resume=resumes[0],
            init=init,
            environment=receipts[0],
        )
        if alone.warm_start is not None:
            logger.info("job %s started from %s", leases[0].job_id, alone.warm_start)
        return [_ended(leases[0], limits[0], alone)]

    trials = [
        PackedTrial(spec, _on_epoch(lease), stop, resume, receipt)
        for spec, lease, stop, resume, receipt in zip(
            specs, leases, stops, resumes, receipts, strict=True
        )
    ]
    outcomes: list[Trained] = []
    for lease, limit, result in zip(leases, limits, fit_packed(trials), strict=True):
        try:
            outcomes.append(
                result if isinstance(result, CnnlabError) else _ended(lease, limit, result)
            )
        except CnnlabError as exc:
            outcomes.append(exc)
    return outcomes


def _init_weights(job_id: str, spec: TrainSpec) -> CheckpointDoc | None:
    """The checkpoint ``spec.init`` names (pinned to a version at submit), read in a short
    session of its own."""
    if spec.init is None:
        return None
    with session_scope() as session:
        blob = lifecycle.init_weights_of(session, job_id, spec.init)
    return checkpoint.loads(blob)


def _resume(job_id: str) -> CheckpointDoc | None:
    with session_scope() as session:
        blob = jobs.resume_checkpoint(session, job_id)
    resume = checkpoint.loads(blob) if blob is not None else None
    if resume is not None:
        logger.info("job %s resumes after epoch %s", job_id, resume.get("epoch"))
    return resume


def _on_epoch(lease: Lease) -> Callable[[EpochReport], bool]:
    """Record each epoch under this attempt's fence, then let the search's pruner decide;
    True stops the job's training (taken over, or pruned)."""
    job_id = lease.job_id

    def on_epoch(report: EpochReport) -> bool:
        last = checkpoint.dumps(report.checkpoint)
        best = last if report.improved else None
        with session_scope() as session:
            kept = lifecycle.record_epoch(
                session,
                job_id,
                report.metrics.to_dict(),
                last,
                best,
                attempt=lease.attempt,
                lease_seconds=lease.config.lease_seconds,
            )
        if not kept:
            lease.lost = True
            return True  # stops training
        with session_scope() as session:
            decision = lifecycle.prune_if_due(session, job_id, lease.attempt)
        if decision is not None:
            logger.info("job %s: %s", job_id, decision.message())
            lease.pruned = True
        return lease.pruned

    return on_epoch


def _ended(lease: Lease, limit: TimeLimit, result: FitResult) -> Outcome:
    """The status a finished training gives its job, and the fields to record with it (its
    test accuracy, its per-class report, where early stopping ended it)."""
    if result.cancelled and limit.reached:
        raise limit.error(result.epochs[-1].epoch if result.epochs else 0)
    if result.cancelled:
        return JobStatus.cancelled, {}
    fields: dict[str, Any] = {
        "test_accuracy": result.test_accuracy,
        "result": _report(lease.job_id, result),
    }
    if result.stopped_early_at is not None:
        logger.info("job %s stopped early at epoch %d", lease.job_id, result.stopped_early_at)
        fields["stopped_early_at"] = result.stopped_early_at
    return JobStatus.succeeded, fields


def _record_receipt(lease: Lease, spec: TrainSpec) -> dict[str, Any] | None:
    """The job's receipt and its model's signature, written as the attempt starts; the receipt
    is handed on to training, which keeps it in the checkpoints."""
    try:
        device = resolve_device(spec.device, deterministic=spec.deterministic)
        environment = run_receipt(spec, device, get_settings())
        signature = of_meta(get_meta(spec.dataset))
    except CnnlabError:
        return None  # training reports what is wrong
    with session_scope() as session:
        lifecycle.record_receipt(session, lease.job_id, lease.attempt, environment, signature)
    return environment


def _report(job_id: str, result: FitResult) -> dict[str, Any] | None:
    """Per-class metrics and confusion of the best weights on the validation and test images
    training evaluated them on (:func:`cnnlab.engine.evaluation.job_report`); None, with a
    warning, if they fail."""
    if result.evaluated is None:
        return None
    val, test = result.evaluated.validation, result.evaluated.test
    try:
        return job_report(result.best_checkpoint, val, test, val.images.device)
    except Exception:
        logger.warning("job %s: its per-class report could not be made", job_id, exc_info=True)
        return None


def _time_limit_seconds(spec: TrainSpec) -> float | CnnlabError | None:
    """How long this attempt may train (:func:`cnnlab.spec.budget.checked_time_limit`; None: no
    limit), or the error that refuses it: the spec is past this server's limits now (a drawn
    trial, a retry, limits lowered since), or its data or model is at fault."""
    try:
        return checked_time_limit(spec, get_settings())
    except CnnlabError as exc:
        return exc
