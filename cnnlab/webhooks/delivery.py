"""Deliver the outbox: at least once, signed, with retries for a day.

:func:`deliver_due` takes the deliveries that are due (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so dispatchers in several processes share the work; everywhere a conditional update
claims each row), commits, and only then POSTs them — no database session is held during an
HTTP request. A claim lasts :data:`CLAIM_SECONDS`: a dispatcher that dies mid-request leaves the
delivery to be taken over after it, so an event may arrive twice (receivers deduplicate by its
id) but is never lost. Each request::

    POST <url>
    Content-Type: application/json
    X-Cnnlab-Event-Id: <event id>
    X-Cnnlab-Timestamp: <Unix seconds>
    X-Cnnlab-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed with the secret>

    {"id": ..., "type": ..., "created_at": ..., "data": {...}}

A 2xx answer delivers it; 410 deletes the webhook (the receiver unsubscribed); anything else
(another status, an error of any kind, a timeout, an address refused) is retried after 30 s,
then twice as long each time (at most :data:`MAX_DELAY`) until a day after the event, when the
delivery is given up. One that is claimed well past that day (its dispatcher died, or it came
back from a claim that expired) is given up at the claim, not sent. The host is resolved and
checked before every attempt (:mod:`cnnlab.webhooks.urls`) and the request goes to the checked
address, so a name cannot be re-pointed in between.

No receiver can hold the others up: the requests run concurrently on an event loop, each under a
whole-request deadline (``webhook_deadline_seconds``, however slowly the receiver drips its
answer) besides the per-read :data:`TIMEOUT_SECONDS`, and each outcome is recorded, in a short
transaction of its own, as soon as its request ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio
import anyio.to_thread
import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cnnlab import __version__
from cnnlab.settings import get_settings
from cnnlab.store.tables import Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent, utcnow
from cnnlab.webhooks.secret_box import unseal
from cnnlab.webhooks.urls import UnsafeWebhookUrl, check_url

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

# Retries go on this long after the event; the first comes FIRST_RETRY after the first attempt.
RETRY_FOR = timedelta(days=1)
FIRST_RETRY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
# Connect, write and read each (the whole request has the settings' webhook_deadline_seconds).
TIMEOUT_SECONDS = 5.0
# How long a claimed delivery is left to the dispatcher that claimed it.
CLAIM_SECONDS = 120.0
# A delivery claimed this long past its last try (a day after the event) is given up unsent.
GIVE_UP_GRACE = timedelta(seconds=CLAIM_SECONDS)
# Deliveries taken per call, and requests in flight at once.
BATCH = 32
PARALLEL = 8
# Events are deleted this long after they happened (deliveries end within RETRY_FOR).
KEEP_EVENTS = timedelta(days=30)
ERROR_LENGTH = 500


@dataclass(frozen=True)
class Due:
    """A claimed delivery: what to send, where, and the claim that fences its result."""

    delivery_id: str
    webhook_id: str
    url: str
    secret: str  # as stored (encrypted: cnnlab.webhooks.secret_box)
    event_id: str
    event_created_at: datetime
    body: bytes
    attempt: int


@dataclass(frozen=True)
class Attempted:
    """One attempt's outcome: the receiver's status code, or what went wrong."""

    delivery_id: str
    event_id: str
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def unsubscribed(self) -> bool:
        return self.status_code == 410


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Cnnlab-Signature`` header's value for a request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_body(event: WebhookEvent) -> bytes:
    created = event.created_at.isoformat().replace("+00:00", "Z")
    doc = {"id": event.id, "type": event.type, "created_at": created, "data": event.data}
    return json.dumps(doc, separators=(",", ":")).encode()


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, ... up to 6 h."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), MAX_DELAY)


def next_attempt(attempts: int, event_created_at: datetime, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts (None: give up). The last try comes
    a day after the event."""
    deadline = event_created_at + RETRY_FOR
    if now >= deadline:
        return None
    return min(now + retry_delay(attempts), deadline)


def deliver_due(
    session_factory: SessionFactory,
    now: datetime | None = None,
    *,
    allow_private: bool | None = None,
    limit: int = BATCH,
    timeout: float = TIMEOUT_SECONDS,
    deadline: float | None = None,
) -> list[Attempted]:
    """Claim the deliveries due at ``now`` (default: the time now), POST them, record each
    outcome as its request ends; what each attempt got. ``session_factory()`` is a context
    manager giving a session that commits at its end (e.g. ``partial(session_scope, url)``).
    ``timeout`` bounds each read, ``deadline`` (default: the settings') each whole request."""
    now = now or utcnow()
    settings = get_settings()
    if allow_private is None:
        allow_private = settings.webhook_allow_private
    if deadline is None:
        deadline = settings.webhook_deadline_seconds
    with session_factory() as session:
        due = claim_due(session, now, limit)
    if not due:
        return []
    run = partial(_deliver_all, session_factory, due, now, allow_private, timeout, deadline)
    return anyio.run(run)


async def _deliver_all(
    session_factory: SessionFactory,
    due: list[Due],
    now: datetime,
    allow_private: bool,
    timeout: float,
    deadline: float,
) -> list[Attempted]:
    outcomes: list[Attempted] = []
    slots = anyio.Semaphore(PARALLEL)

    async def deliver_one(client: httpx.AsyncClient, d: Due) -> None:
        async with slots:
            attempted = await send(client, d, allow_private=allow_private, deadline=deadline)
        outcomes.append(attempted)
        await anyio.to_thread.run_sync(_record, session_factory, d, attempted, now)

    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        anyio.create_task_group() as tasks,
    ):
        for d in due:
            tasks.start_soon(deliver_one, client, d)
    return outcomes


def _record(session_factory: SessionFactory, due: Due, attempted: Attempted, now: datetime) -> None:
    """Record one outcome in a transaction of its own. Should that fail, the claim expires and
    the delivery is tried again: the others' outcomes are recorded all the same."""
    try:
        with session_factory() as session:
            record_outcome(session, due, attempted, now)
    except Exception:
        logger.exception("recording webhook delivery %s failed", due.delivery_id)


def claim_due(session: Session, now: datetime, limit: int = BATCH) -> list[Due]:
    """Take up to ``limit`` due deliveries for :data:`CLAIM_SECONDS` (the caller commits).
    Those past their last try (:data:`GIVE_UP_GRACE` after a day) are given up instead."""
    stmt = (
        select(WebhookDelivery, WebhookEvent, Webhook.url, Webhook.secret)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
    until = now + timedelta(seconds=CLAIM_SECONDS)
    claimed = []
    for delivery, event, url, secret in session.execute(stmt).all():
        attempt = delivery.attempts + 1  # read before the update (it refreshes ``delivery``)
        expired = now >= event.created_at + RETRY_FOR + GIVE_UP_GRACE
        values: dict[str, object] = (
            {"next_attempt_at": None, "given_up": True, "last_error": "given up: a day passed"}
            if expired
            else {"attempts": attempt, "next_attempt_at": until}
        )
        # Conditional: of two dispatchers that read the same row (SQLite), one claims it.
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.attempts == attempt - 1,
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(**values)
        )
        if expired:
            logger.warning("webhook delivery %s given up unsent: a day has passed", delivery.id)
            continue
        if taken.rowcount:  # type: ignore[attr-defined]
            claimed.append(
                Due(
                    delivery_id=delivery.id,
                    webhook_id=delivery.webhook_id,
                    url=url,
                    secret=secret,
                    event_id=event.id,
                    event_created_at=event.created_at,
                    body=event_body(event),
                    attempt=attempt,
                )
            )
    return claimed


async def send(
    client: httpx.AsyncClient, due: Due, *, allow_private: bool, deadline: float
) -> Attempted:
    """POST one delivery to the address its URL's host resolves to now, if that is allowed,
    within ``deadline`` seconds in all. Never raises: whatever goes wrong is the outcome."""

    def outcome(status_code: int | None, error: str | None = None) -> Attempted:
        if error is not None:
            error = error[:ERROR_LENGTH]
        return Attempted(due.delivery_id, due.event_id, status_code, error)

    try:
        with anyio.fail_after(deadline):
            return await _post(client, due, allow_private, outcome)
    except TimeoutError:
        return outcome(None, f"timed out (the request took over {deadline:g}s)")
    except UnsafeWebhookUrl as exc:
        return outcome(None, f"refused: {exc.message}")
    except httpx.TimeoutException:
        return outcome(None, f"timed out (after {client.timeout.read or 0:g}s)")
    except Exception as exc:  # any failure is this attempt's, never the round's
        return outcome(None, f"{type(exc).__name__}: {exc}")


async def _post(
    client: httpx.AsyncClient,
    due: Due,
    allow_private: bool,
    outcome: Callable[[int | None], Attempted],
) -> Attempted:
    # Resolving the host blocks: in a thread (cancelled with the deadline, abandoned if stuck).
    target = await anyio.to_thread.run_sync(
        partial(check_url, due.url, allow_private=allow_private), abandon_on_cancel=True
    )
    url = httpx.URL(due.url)
    secret = unseal(due.secret)
    timestamp = str(int(time.time()))
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": f"cnnlab-webhooks/{__version__}",
        "X-Cnnlab-Event-Id": due.event_id,
        "X-Cnnlab-Timestamp": timestamp,
        "X-Cnnlab-Signature": sign(secret, timestamp, due.body),
    }
    # To the address just checked, with the name for TLS (SNI and certificate check).
    pinned = url.copy_with(host=target.addresses[0])
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    async with client.stream(
        "POST", pinned, content=due.body, headers=headers, extensions=extensions
    ) as response:
        return outcome(response.status_code)  # the body is not read


def record_outcome(session: Session, due: Due, attempted: Attempted, now: datetime) -> None:
    """Write an attempt's outcome, unless another dispatcher took the delivery over since."""
    if attempted.unsubscribed:
        logger.info("webhook %s answered 410: unsubscribed (deleted)", due.webhook_id)
        session.execute(delete(Webhook).where(Webhook.id == due.webhook_id))
        return
    if attempted.delivered:
        values: dict[str, object] = {"delivered_at": now, "next_attempt_at": None}
        retry_at = None
    else:
        retry_at = next_attempt(due.attempt, due.event_created_at, now)
        values = {"next_attempt_at": retry_at, "given_up": retry_at is None}
    written = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == due.delivery_id,
            WebhookDelivery.attempts == due.attempt,
            WebhookDelivery.delivered_at.is_(None),
        )
        .values(last_status_code=attempted.status_code, last_error=attempted.error, **values)
    )
    if not written.rowcount:  # type: ignore[attr-defined]
        return
    session.add(
        WebhookAttempt(
            delivery_id=due.delivery_id,
            attempted_at=now,
            status_code=attempted.status_code,
            error=attempted.error,
            next_attempt_at=retry_at,
        )
    )
    if retry_at is None and not attempted.delivered:
        logger.warning(
            "webhook delivery %s given up after %d attempts", due.delivery_id, due.attempt
        )


def prune_events(session: Session, now: datetime | None = None) -> int:
    """Delete events (and their deliveries) older than :data:`KEEP_EVENTS`; how many."""
    before = (now or utcnow()) - KEEP_EVENTS
    result = session.execute(delete(WebhookEvent).where(WebhookEvent.created_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
