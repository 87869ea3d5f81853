"""No receiver can break delivery for the others. A real worker process's dispatcher delivers a
round in which one user's receiver drips its answer a byte every 0.8 s, another user's webhook
URL is poisoned (a control character, stored before URLs were checked with the sending parser:
the row is inserted directly), and a third user's events all arrive, each on its first attempt;
the drip is cut at the whole-request deadline and the poisoned URL's attempt is recorded as a
failure to retry, not lost with the round."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cnnlab.store.db import session_scope
from cnnlab.store.tables import Webhook, WebhookAttempt, WebhookDelivery, new_id
from cnnlab.testing.stack import wait_until
from cnnlab.webhooks import outbox
from cnnlab.webhooks.secret_box import seal
from cnnlab.webhooks.subscriptions import create_webhook, new_secret
from tests.faults.harness import worker_env, workers
from tests.utils.factories import make_user
from tests.utils.receiver import Dripper, Receiver

pytestmark = pytest.mark.slow

DEADLINE_S = 3


def attempts_of(event_id: str) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    with session_scope() as s:
        row = s.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id))
        assert row is not None
        tries = list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id)))
        s.expunge_all()
        return row, tries


def test_a_dripping_and_a_poisoned_receiver_do_not_hold_up_another_users_events(
    mnist_home: Path, tmp_path: Path
) -> None:
    with Dripper(interval=0.8) as dripper, Receiver() as receiver:
        with session_scope() as s:
            dripping, _ = make_user(s)
            poisoned, _ = make_user(s)
            healthy, _ = make_user(s)
            create_webhook(s, dripping.id, dripper.url, ["job.succeeded"], allow_private=True)
            bad_url = receiver.url.replace("/hook", "/ho\x7fok")
            s.add(
                Webhook(
                    id=new_id(),
                    owner_id=poisoned.id,
                    url=bad_url,
                    events=["job.succeeded"],
                    secret=seal(new_secret()),
                )
            )
            create_webhook(s, healthy.id, receiver.url, ["job.succeeded"], allow_private=True)
        with session_scope() as s:
            slow_event = outbox.record(s, dripping.id, "job.succeeded", {"id": "drip"})
            bad_event = outbox.record(s, poisoned.id, "job.succeeded", {"id": "poison"})
            good_events = [
                outbox.record(s, healthy.id, "job.succeeded", {"id": f"ok-{i}"}) for i in range(5)
            ]
        assert slow_event and bad_event and all(good_events)

        env = worker_env(
            CNNLAB_WEBHOOK_ALLOW_PRIVATE="1", CNNLAB_WEBHOOK_DEADLINE_SECONDS=str(DEADLINE_S)
        )
        with workers(tmp_path, 1, env):
            wait_until(lambda: len(receiver.requests) >= 5 or None, 60, "the healthy events")
            # The drip is cut at the deadline (its answer would take over a minute).
            wait_until(lambda: attempts_of(str(slow_event))[1] or None, 30, "the drip's outcome")
            wait_until(lambda: attempts_of(str(bad_event))[1] or None, 30, "the poison's outcome")
            wait_until(lambda: dripper.closed_early or None, 30, "the dispatcher to hang up")

    assert sorted(json_id(body) for _, body in receiver.requests) == sorted(good_events)
    for event_id in good_events:
        row, tries = attempts_of(str(event_id))
        assert row.delivered_at is not None and [t.status_code for t in tries] == [200]

    row, [drip] = attempts_of(str(slow_event))
    assert drip.status_code is None and drip.error is not None
    assert f"took over {DEADLINE_S}s" in drip.error
    assert row.next_attempt_at is not None and not row.given_up  # retried later
    assert dripper.requests == 1

    row, [poison] = attempts_of(str(bad_event))
    assert poison.status_code is None and poison.error is not None
    assert "control characters" in poison.error
    assert row.next_attempt_at is not None and not row.given_up


def json_id(body: bytes) -> str:
    return str(json.loads(body)["id"])
