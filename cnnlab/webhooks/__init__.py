"""Webhooks: a user's subscriptions (:mod:`~cnnlab.webhooks.subscriptions`), the URLs cnnlab sends
to (:mod:`~cnnlab.webhooks.urls`) and the delivery of the outbox (:mod:`~cnnlab.webhooks.delivery`).
The events themselves are written by the lifecycle and the registry, in the transaction of the
change they report (:mod:`cnnlab.webhooks.outbox`)."""

from cnnlab.webhooks.delivery import Attempted, deliver_due, prune_events, sign
from cnnlab.webhooks.outbox import EVENT_TYPES
from cnnlab.webhooks.urls import InvalidWebhook, UnsafeWebhookUrl, check_url

__all__ = [
    "EVENT_TYPES",
    "Attempted",
    "InvalidWebhook",
    "UnsafeWebhookUrl",
    "check_url",
    "deliver_due",
    "prune_events",
    "sign",
]
