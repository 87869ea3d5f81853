"""Claiming a pack: the trials of one search a worker trains side by side with one it claimed.

Each trial of a pack is claimed on its own, with :func:`cnnlab.lifecycle.leases.claim` (the same
conditional update, its own attempt number as fencing token, its own lease), so a pack is never
more than a worker holding several jobs at once: a takeover, a cancel or a prune acts on one
trial as it would on a lone job. A sibling's own message, when a worker takes it, finds the job
held and does nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.lifecycle.leases import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    Claim,
    claim,
    claimable,
)
from cnnlab.spec.packing import pack_key
from cnnlab.spec.train import TrainSpec
from cnnlab.store.tables import Job, utcnow


def claim_siblings(
    session: Session,
    job_id: str,
    worker_id: str,
    *,
    limit: int,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[tuple[str, Claim]]:
    """Claim up to ``limit`` more trials of ``job_id``'s search that can train packed with it:
    claimable now (queued, or abandoned by a dead worker), at the same epoch (a pack resumes
    after one epoch) and with the same :func:`cnnlab.spec.packing.pack_key`. In trial order."""
    if limit < 1:
        return []
    first = session.execute(
        select(Job.search_id, Job.epoch, Job.spec).where(Job.id == job_id)
    ).one_or_none()
    if first is None or first.search_id is None:
        return []
    key = pack_key(TrainSpec.model_validate(first.spec))
    if key is None:
        return []
    candidates = session.execute(
        select(Job.id, Job.spec)
        .where(
            Job.search_id == first.search_id,
            Job.id != job_id,
            Job.epoch == first.epoch,
            Job.cancel_requested.is_(False),
            claimable(utcnow()),
        )
        .order_by(Job.trial_index)
    ).all()
    claimed: list[tuple[str, Claim]] = []
    for candidate in candidates:
        if len(claimed) == limit:
            break
        if pack_key(TrainSpec.model_validate(candidate.spec)) != key:
            continue
        held = claim(
            session,
            candidate.id,
            worker_id,
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
        )
        if held is not None:  # another worker may have claimed it meanwhile
            claimed.append((candidate.id, held))
    return claimed
