"""One view per resource, as the API answers it (``JobRead``, ``SearchRead``) and as webhook
payloads carry it, with what the server decided: the ``actions`` a user may take now, the best
trial, why a trial ended early. Clients show these; they decide none of it again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.status import JobStatus
from cnnlab.store.searches import TrialStats, trials_with_stats
from cnnlab.store.tables import Job, Search

# Which trials a retry runs again: those that did not end with a model of their own.
RETRYABLE = (JobStatus.failed, JobStatus.cancelled)


def job_actions(job: Job) -> list[str]:
    """``cancel`` while queued or running; ``register`` once it has a model (a best checkpoint,
    from its first epoch on); ``delete`` once ended, unless it is a search's trial (deleted with
    its search)."""
    actions = [] if job.status.ended else ["cancel"]
    if job.epoch:
        actions.append("register")
    if job.status.ended and job.search_id is None:
        actions.append("delete")
    return actions


def search_actions(search: Search, trials: Sequence[Job]) -> list[str]:
    """``pause`` or ``resume`` and ``cancel`` until it ends; then ``retry`` while a trial failed
    or was cancelled (one with params: a refused draw has no point to run again) and
    ``delete``."""
    if not search.status.ended:
        return ["resume" if search.paused else "pause", "cancel"]
    retry = any(t.status in RETRYABLE and t.params for t in trials)
    return ["retry", "delete"] if retry else ["delete"]


def job_view(job: Job) -> dict[str, Any]:
    """A job as ``GET /v1/jobs/{id}`` answers it."""
    return {
        "id": job.id,
        "status": str(job.status),
        "spec": job.spec,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "epoch": job.epoch,
        "attempts": job.attempts,
        "best_val_accuracy": job.best_val_accuracy,
        "test_accuracy": job.test_accuracy,
        "error": job.error,
        "cancel_requested": bool(job.cancel_requested),
        "search_id": job.search_id,
        "params": job.params,
        "kind": job.kind,
        "name": job.name,
        "tags": job.tags,
        "notes": job.notes,
        "environment": job.environment,
        "result": without_pixels(job.result),
        "stopped_early_at": job.stopped_early_at,
        "actions": job_actions(job),
    }


def without_pixels(value: Any) -> Any:
    """A result without the base64 images of its mistakes (served as PNGs, not inline)."""
    if isinstance(value, dict):
        return {k: without_pixels(v) for k, v in value.items() if k != "png"}
    if isinstance(value, list):
        return [without_pixels(v) for v in value]
    return value


def trial_view(
    job: Job, score: float | None, stats: TrialStats | None, metric: str
) -> dict[str, Any]:
    """A trial in a search's ``trials``."""
    error = job.error or {}
    pruned = error.get("epoch") if error.get("type") == "pruned" else None
    val_loss = stats.best_val_loss if stats is not None else None
    if stats is None and metric == "val_loss":
        val_loss = score
    return {
        "job_id": job.id,
        "index": job.trial_index,
        "params": job.params or {},
        "status": str(job.status),
        "epoch": job.epoch,
        "val_accuracy": job.best_val_accuracy,
        "val_loss": val_loss,
        "score": score,
        "test_accuracy": job.test_accuracy,
        "seconds": stats.seconds if stats is not None else None,
        "error_type": error.get("type"),
        "pruned_epoch": pruned if isinstance(pruned, int) else None,
        "error_message": error.get("message"),
    }


def search_view(session: Session, search: Search) -> dict[str, Any]:
    """A search as ``GET /v1/searches/{id}`` answers it, with its trials."""
    trials, scores, stats = trials_with_stats(session, search)
    best = next((t for t in trials if t.id == search.best_job_id), None)
    return {
        "id": search.id,
        "status": str(search.status),
        "base": search.base,
        "grid": search.grid or {},
        "space": search.space,
        "sampler": search.sampler or "grid",
        "num_trials": search.num_trials,
        "seed": search.seed or 0,
        "pruner": search.pruner,
        "max_concurrent_trials": search.max_concurrent_trials,
        "metric": search.metric,
        "mode": search.mode,
        "paused": bool(search.paused),
        "register_best_as": search.register_best_as,
        "trials": [trial_view(t, scores.get(t.id), stats.get(t.id), search.metric) for t in trials],
        "best_job_id": search.best_job_id,
        "test_accuracy": best.test_accuracy if best is not None else None,
        "cancel_requested": bool(search.cancel_requested),
        "created_at": search.created_at,
        "finished_at": search.finished_at,
        "actions": search_actions(search, trials),
    }
