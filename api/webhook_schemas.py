"""What the webhook routes read and write (``/v1/webhooks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cnnlab.store.tables import WEBHOOK_URL_LENGTH
from cnnlab.webhooks.outbox import EventType


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=WEBHOOK_URL_LENGTH,
        description="an http(s) URL whose host resolves to public addresses only",
        examples=["https://example.com/cnnlab-hook"],
    )
    events: list[EventType] = Field(
        min_length=1, description="the event types to send", examples=[["job.succeeded"]]
    )


class WebhookRead(_Read):
    id: str
    url: str
    events: list[EventType]
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="signs every request (`X-Cnnlab-Signature`); shown only in this answer"
    )


class WebhookList(BaseModel):
    items: list[WebhookRead]
    next: str | None = Field(description="pass as `cursor` for the next page; null at the end")


class AttemptRead(_Read):
    attempted_at: datetime
    status_code: int | None = Field(description="the receiver's answer (null: no answer)")
    error: str | None = Field(description="why there was no answer: timeout, refused, ...")
    next_attempt_at: datetime | None = Field(
        description="the retry this attempt scheduled (null: none: delivered, or given up)"
    )


class DeliveryRead(_Read):
    id: str
    event_id: str = Field(description="the event's `id` (also `X-Cnnlab-Event-Id`)")
    event_type: str
    created_at: datetime
    state: Literal["pending", "delivered", "failed"] = Field(
        description="`failed`: given up, a day after the event"
    )
    next_attempt_at: datetime | None = Field(description="the next retry, while pending")
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[AttemptRead] = Field(description="each attempt, oldest first")


class DeliveryList(BaseModel):
    items: list[DeliveryRead]
    next: str | None = Field(description="pass as `cursor` for the next page; null at the end")
