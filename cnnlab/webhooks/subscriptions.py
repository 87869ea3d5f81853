"""A user's webhooks and their deliveries, for the API. Everything is per owner: someone else's
webhook is :class:`NotFound` exactly like a missing one. Signing secrets are stored encrypted
(:mod:`cnnlab.webhooks.secret_box`) and returned in plain text only by :func:`create_webhook` and
:func:`rotate_secret`, once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cnnlab.errors import CnnlabError
from cnnlab.settings import get_settings
from cnnlab.store.errors import NotFound
from cnnlab.store.paging import DEFAULT_LIMIT, Page, paginate
from cnnlab.store.tables import (
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    new_id,
)
from cnnlab.webhooks.outbox import EVENT_TYPES
from cnnlab.webhooks.secret_box import PLAIN_PREFIX, seal
from cnnlab.webhooks.urls import InvalidWebhook, check_url

SECRET_PREFIX = PLAIN_PREFIX


class TooManyWebhooks(CnnlabError):
    """The owner has as many webhooks as one user may (422)."""

    code = "too_many_webhooks"
    status_code = 422

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"you have {limit} webhooks, the most one user may have: delete one first",
            limit=limit,
        )


@dataclass(frozen=True)
class NewSecret:
    """A webhook as created or rotated, with its secret in plain text (shown once)."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    secret: str


@dataclass
class AttemptView:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None


@dataclass
class DeliveryView:
    id: str
    event_id: str
    event_type: str
    created_at: datetime
    state: str  # pending, delivered, failed
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[AttemptView]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def create_webhook(
    session: Session,
    owner_id: int,
    url: str,
    events: list[str],
    *,
    allow_private: bool,
    max_webhooks: int | None = None,
) -> NewSecret:
    """A new webhook for ``events`` (in the order given, once each) with a new signing secret.
    The URL must be one :func:`~cnnlab.webhooks.urls.check_url` accepts; the owner may have at
    most ``max_webhooks`` (None: the settings' ``max_webhooks_per_user``)."""
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        reason = f"unknown event type {unknown[0]!r}" if unknown else "none given"
        raise InvalidWebhook("events", f"{reason} (one or more of {', '.join(EVENT_TYPES)})")
    check_url(url, allow_private=allow_private)
    if max_webhooks is None:
        max_webhooks = get_settings().max_webhooks_per_user
    owned = session.scalar(
        select(func.count()).select_from(Webhook).where(Webhook.owner_id == owner_id)
    )
    if (owned or 0) >= max_webhooks:
        raise TooManyWebhooks(max_webhooks)
    secret = new_secret()
    hook = Webhook(
        id=new_id(),
        owner_id=owner_id,
        url=url,
        events=list(dict.fromkeys(events)),
        secret=seal(secret),
    )
    session.add(hook)
    session.flush()
    return NewSecret(hook.id, hook.url, list(hook.events), hook.created_at, secret)


def rotate_secret(session: Session, owner_id: int, webhook_id: str) -> NewSecret:
    """Give the webhook a new signing secret; deliveries from now on are signed with it."""
    hook = get_webhook(session, owner_id, webhook_id)
    secret = new_secret()
    hook.secret = seal(secret)
    session.flush()
    return NewSecret(hook.id, hook.url, list(hook.events), hook.created_at, secret)


def list_webhooks(
    session: Session, owner_id: int, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Webhook]:
    stmt = select(Webhook).where(Webhook.owner_id == owner_id)
    return paginate(session, stmt, Webhook.created_at, Webhook.id, limit=limit, cursor=cursor)


def get_webhook(session: Session, owner_id: int, webhook_id: str) -> Webhook:
    hook = session.scalar(
        select(Webhook).where(Webhook.id == webhook_id, Webhook.owner_id == owner_id)
    )
    if hook is None:
        raise NotFound("webhook", webhook_id)
    return hook


def delete_webhook(session: Session, owner_id: int, webhook_id: str) -> None:
    """Delete the webhook with its pending and past deliveries."""
    deleted = session.execute(
        delete(Webhook)
        .where(Webhook.id == webhook_id, Webhook.owner_id == owner_id)
        .returning(Webhook.id)
    ).first()
    if deleted is None:
        raise NotFound("webhook", webhook_id)


def list_deliveries(
    session: Session,
    owner_id: int,
    webhook_id: str,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[DeliveryView]:
    """The webhook's deliveries, newest first, each with its attempts (oldest first)."""
    get_webhook(session, owner_id, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    page = paginate(
        session, stmt, WebhookDelivery.created_at, WebhookDelivery.id, limit=limit, cursor=cursor
    )
    rows: list[WebhookDelivery] = page.items
    if not rows:
        return Page([], page.next)
    types: dict[str, str] = {
        event_id: event_type
        for event_id, event_type in session.execute(
            select(WebhookEvent.id, WebhookEvent.type).where(
                WebhookEvent.id.in_({r.event_id for r in rows})
            )
        )
    }
    attempts: dict[str, list[AttemptView]] = {}
    for a in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_([r.id for r in rows]))
        .order_by(WebhookAttempt.id)
    ):
        attempts.setdefault(a.delivery_id, []).append(
            AttemptView(a.attempted_at, a.status_code, a.error, a.next_attempt_at)
        )
    return Page(
        [_view(r, types.get(r.event_id, ""), attempts.get(r.id, [])) for r in rows], page.next
    )


def _view(row: WebhookDelivery, event_type: str, attempts: list[AttemptView]) -> DeliveryView:
    if row.delivered_at is not None:
        state = "delivered"
    elif row.given_up:
        state = "failed"
    else:
        state = "pending"
    return DeliveryView(
        id=row.id,
        event_id=row.event_id,
        event_type=event_type,
        created_at=row.created_at,
        state=state,
        next_attempt_at=row.next_attempt_at if state == "pending" else None,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        attempts=attempts,
    )
