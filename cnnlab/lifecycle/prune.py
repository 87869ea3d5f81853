"""Early stopping of a search's trial at an epoch boundary, decided from the metrics rows already
in the database (the rule itself is :mod:`cnnlab.search.pruning`'s, Optuna's pruners)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.lifecycle.leases import held
from cnnlab.lifecycle.searches import curves
from cnnlab.lifecycle.transitions import move
from cnnlab.search.config import parse_pruner
from cnnlab.status import JobStatus
from cnnlab.store.tables import Job, Search, utcnow

if TYPE_CHECKING:
    from cnnlab.search.pruning import Decision

_CURVE_STATE = {
    JobStatus.succeeded: "complete",
    JobStatus.pruned: "pruned",
    JobStatus.failed: "failed",
    JobStatus.cancelled: "failed",
}


def prune_if_due(session: Session, job_id: str, attempt: int) -> Decision | None:
    """After an epoch of a trial whose search has a pruner: if the rule stops it, the trial ends
    ``pruned`` (its metrics and checkpoints kept, the decision in its ``error``) and the decision
    is returned; None to go on. Only while ``attempt`` holds the job."""
    from cnnlab.search.pruning import Curve, should_prune

    row = session.execute(
        select(Search.id, Search.pruner, Search.metric, Search.mode, Job.spec)
        .join(Job, Job.search_id == Search.id)
        .where(Job.id == job_id)
    ).first()
    if row is None or row.pruner is None:
        return None
    trials = list(session.execute(select(Job.id, Job.status).where(Job.search_id == row.id)))
    metric_curves = curves(session, row.metric, [t.id for t in trials])
    values = metric_curves.get(job_id, [])
    if not values or len(values) >= int(row.spec.get("epochs", 0)):
        return None  # a trial that ran every epoch is complete, not pruned
    others = [
        Curve(metric_curves.get(t.id, []), _CURVE_STATE.get(t.status, "running"))  # type: ignore[arg-type]
        for t in trials
        if t.id != job_id
    ]
    decision = should_prune(parse_pruner(row.pruner), values, others, row.mode)
    if decision is None:
        return None
    pruned = move(
        session,
        job_id,
        JobStatus.pruned,
        where=(held(job_id, attempt),),
        error=decision.to_error(),
        finished_at=utcnow(),
        lease_expires_at=None,
    )
    return decision if pruned else None
