"""Webhooks: the caller's subscriptions to their jobs', searches' and models' events, and what
was delivered. Another user's webhook is 404 exactly like a missing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import DbDep, SettingsDep, UserDep
from api.schemas import ErrorResponse
from api.webhook_schemas import (
    DeliveryList,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
)
from cnnlab.store.paging import DEFAULT_LIMIT, MAX_LIMIT
from cnnlab.webhooks import subscriptions

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(description="`next` of the previous page")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses={
        422: {
            "model": ErrorResponse,
            "description": "`url` not http(s), not a URL the sender can parse (control "
            "characters), or its host resolves to a private, loopback or link-local address; "
            "`events` empty or unknown; `too_many_webhooks`: the caller has "
            "`CNNLAB_MAX_WEBHOOKS_PER_USER` already",
        }
    },
)
async def create_webhook(
    body: WebhookCreate, db: DbDep, user: UserDep, settings: SettingsDep
) -> WebhookCreated:
    """Send the caller's `events` to `url`, signed with the returned `secret` (shown only here).
    See docs/API.md#webhooks for the requests and how to verify them."""
    hook = await db.run(
        subscriptions.create_webhook,
        user.id,
        body.url,
        list(body.events),
        allow_private=settings.webhook_allow_private,
        max_webhooks=settings.max_webhooks_per_user,
    )
    return WebhookCreated.model_validate(hook)


@router.get("", response_model=WebhookList)
async def list_webhooks(
    db: DbDep, user: UserDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> WebhookList:
    """The caller's webhooks, newest first (without their secrets)."""
    page = await db.read(subscriptions.list_webhooks, user.id, limit=limit, cursor=cursor)
    return WebhookList(items=[WebhookRead.model_validate(h) for h in page.items], next=page.next)


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: str, db: DbDep, user: UserDep) -> WebhookRead:
    return WebhookRead.model_validate(await db.read(subscriptions.get_webhook, user.id, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: str, db: DbDep, user: UserDep) -> Response:
    """Stop sending: pending deliveries are dropped with it."""
    await db.run(subscriptions.delete_webhook, user.id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated)
async def rotate_secret(webhook_id: str, db: DbDep, user: UserDep) -> WebhookCreated:
    """A new signing secret for the webhook, shown only in this answer; every request from now
    on (retries of earlier events included) is signed with it, the old one no longer."""
    rotated = await db.run(subscriptions.rotate_secret, user.id, webhook_id)
    return WebhookCreated.model_validate(rotated)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    webhook_id: str, db: DbDep, user: UserDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> DeliveryList:
    """The webhook's deliveries, newest first: each attempt's time, the receiver's status code
    or the error, and the next retry."""
    page = await db.read(
        subscriptions.list_deliveries, user.id, webhook_id, limit=limit, cursor=cursor
    )
    return DeliveryList(items=[DeliveryRead.model_validate(d) for d in page.items], next=page.next)
