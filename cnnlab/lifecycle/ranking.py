"""Which trial of a search is its best: a lifecycle rule (the search's end names it), read from
the scores the store records."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cnnlab.status import JobStatus
from cnnlab.store.searches import trial_scores
from cnnlab.store.tables import Job, Search

# The trials that may be a search's best: those that ended with a model of their own.
RANKED = (JobStatus.succeeded, JobStatus.pruned)


def best_trial(session: Session, search: Search, trials: list[Job]) -> Job | None:
    """The trial with the best validation score among the succeeded and pruned ones. A pruned
    trial is the best only if no succeeded trial scores as well; ties otherwise go to the
    earlier trial."""
    scores = trial_scores(session, search, trials)
    candidates = [t for t in trials if t.status in RANKED and scores[t.id] is not None]
    if not candidates:
        return None
    sign = 1.0 if search.mode == "max" else -1.0
    return max(
        candidates,
        key=lambda t: (
            sign * float(scores[t.id] or 0.0),
            t.status is JobStatus.succeeded,
            -(t.trial_index or 0),
        ),
    )
