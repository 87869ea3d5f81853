"""The job lifecycle: the only code that changes a job's or a search's status.

A job's status moves only through :func:`~cnnlab.lifecycle.transitions.move`, along this table
(docs/LIFECYCLE.md draws it)::

    to         from      by                                  when
    ---------  --------  ----------------------------------  -----------------------------------
    queued     (new)     submit_job, create_search           the row is added; sent after commit
    running    queued    claim                               a worker takes it
    running    running   claim                               its lease expired: a new attempt
    queued     running   sweep                               lease expired, attempts left
    succeeded  running   finish_job                          the attempt holding it
    failed     running   finish_job                          training raised (typed error)
    failed     running   claim, sweep                        lease expired, out of attempts
    failed     queued    submit_job, create_search           the queue refused the message
    cancelled  queued    cancel_job, cancel_search           at once
    cancelled  running   finish_job                          its worker stopped after a cancel
    cancelled  running   claim, sweep                        lease expired after a cancel
    pruned     running   prune_if_due                        the search's pruner stopped it
    queued     failed    retry_search                        a search's trial run again
    queued     cancelled retry_search                        a search's trial run again

Everything else is refused (the conditional update matches no row). A search's status follows
from its trials (:func:`refresh_search`, after every trial's move): ``queued`` until a trial
starts, ``running`` (or ``paused``) until every trial it will run has ended, then ``succeeded``
if a trial succeeded or was pruned, ``cancelled`` if it was cancelled, else ``failed``. Its
trials beyond ``max_concurrent_trials`` are added as earlier ones end (:func:`advance_search`).

Locks are always taken in one order: the search row, then the job row. ``attempts`` counts the
claims and fences writes: a worker whose lease expired and whose job was taken over finds every
later write refused. Sending messages to the workers is the caller's: the API and the worker
pass an :data:`Enqueue`, so nothing here imports them.
"""

from cnnlab.lifecycle.batches import record_batch_rows, record_progress, rows_done
from cnnlab.lifecycle.cancel import cancel_job
from cnnlab.lifecycle.leases import (
    Claim,
    LeaseSettings,
    claim,
    end_attempt,
    finish_job,
    holds,
    record_epoch,
    record_receipt,
    renew_lease,
    worker_lost_error,
)
from cnnlab.lifecycle.packing import claim_siblings
from cnnlab.lifecycle.prune import prune_if_due
from cnnlab.lifecycle.scoring import (
    submit_batch_prediction,
    submit_comparison,
    submit_evaluation,
)
from cnnlab.lifecycle.searches import (
    advance_search,
    advance_search_of,
    cancel_search,
    create_search,
    live_searches,
    pause_search,
    resume_search,
    retry_search,
)
from cnnlab.lifecycle.submit import Enqueue, submit_job
from cnnlab.lifecycle.sweep import Sweep, sweep
from cnnlab.lifecycle.transitions import TRANSITIONS, lock_search, move, refresh_search
from cnnlab.lifecycle.warm_start import init_weights_of, pin_init

__all__ = [
    "TRANSITIONS",
    "Claim",
    "Enqueue",
    "LeaseSettings",
    "Sweep",
    "advance_search",
    "advance_search_of",
    "cancel_job",
    "cancel_search",
    "claim",
    "claim_siblings",
    "create_search",
    "end_attempt",
    "finish_job",
    "holds",
    "init_weights_of",
    "live_searches",
    "lock_search",
    "move",
    "pause_search",
    "pin_init",
    "prune_if_due",
    "record_batch_rows",
    "record_epoch",
    "record_progress",
    "record_receipt",
    "refresh_search",
    "renew_lease",
    "resume_search",
    "retry_search",
    "rows_done",
    "submit_batch_prediction",
    "submit_comparison",
    "submit_evaluation",
    "submit_job",
    "sweep",
    "worker_lost_error",
]
