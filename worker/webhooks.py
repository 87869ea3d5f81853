"""The webhook dispatcher: delivers the outbox (:func:`cnnlab.webhooks.deliver_due`) from a
daemon thread of a worker's main process, and of ``cnnlab serve``.

A thread of its own, not part of the sweep: a receiver that answers slowly (up to the delivery
timeout) must not delay the recovery of abandoned jobs, and deliveries are due every few
seconds, not every sweep interval. Dispatchers in several processes share the work safely (each
delivery is claimed by one of them). No pool process delivers: they are busy training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from cnnlab.store.db import session_scope
from cnnlab.webhooks import deliver_due, prune_events
from worker.periodic import Periodic

logger = logging.getLogger(__name__)

# Seconds between looks for due deliveries (one indexed query when there are none).
INTERVAL_SECONDS = 2.0
# Seconds between deletions of old events.
PRUNE_SECONDS = 3600.0


class WebhookDispatcher(Periodic):
    """Delivers due webhooks every ``interval`` seconds until stopped. It holds the fork lock
    only while it uses the database: its HTTP requests, which hold no session, may overlap a
    fork."""

    lock_rounds = False

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__("cnnlab-webhooks", interval)
        self._pruned_at = float("-inf")

    def run_once(self) -> int:
        """One round: deliver what is due (and, hourly, forget old events); attempts made."""
        if time.monotonic() - self._pruned_at > PRUNE_SECONDS:
            with self._session() as session:
                prune_events(session)
            self._pruned_at = time.monotonic()
        attempted = deliver_due(self._session)
        for a in attempted:
            if not a.delivered:
                logger.info(
                    "webhook delivery %s (event %s): %s",
                    a.delivery_id,
                    a.event_id,
                    a.error or f"status {a.status_code}",
                )
        return len(attempted)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.busy, session_scope() as session:
            yield session
