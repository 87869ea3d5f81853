"""A webhook is delivered by whichever process is alive: the job's state change writes its event
in the same transaction, the process that made the change dies before sending (here: the test
process, which never sends), and a real worker process's dispatcher delivers it, once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from cnnlab import lifecycle
from cnnlab.status import JobStatus
from cnnlab.store.db import session_scope
from cnnlab.testing.stack import wait_until
from cnnlab.webhooks.subscriptions import create_webhook
from tests.faults.harness import worker_env, workers
from tests.utils.factories import make_job, make_user, metrics
from tests.utils.receiver import Receiver

pytestmark = pytest.mark.slow


def test_an_event_outlives_the_process_that_wrote_it(mnist_home: Path, tmp_path: Path) -> None:
    with Receiver() as receiver:
        with session_scope() as session:
            owner, _ = make_user(session)
            hook = create_webhook(
                session, owner.id, receiver.url, ["job.succeeded"], allow_private=True
            )
            secret = hook.secret
            job_id = make_job(session, owner).id
        with session_scope() as session:
            held = lifecycle.claim(session, job_id, "a-worker-about-to-die")
            assert held is not None
        with session_scope() as session:
            lifecycle.record_epoch(session, job_id, metrics(1, 0.8), b"l", b"b")
            assert lifecycle.finish_job(session, job_id, JobStatus.succeeded, attempt=held.attempt)
        # The state change and its event are committed; nothing here sends it.
        time.sleep(1)
        assert receiver.requests == []

        with workers(tmp_path, 1, worker_env(CNNLAB_WEBHOOK_ALLOW_PRIVATE="1")):
            wait_until(lambda: receiver.requests or None, 60, "the webhook to arrive")
            time.sleep(3)  # a second dispatcher round sends nothing more
        [(headers, body)] = receiver.requests
    expected = hmac.new(
        secret.encode(), f"{headers['x-cnnlab-timestamp']}.".encode() + body, hashlib.sha256
    )
    assert headers["x-cnnlab-signature"] == f"sha256={expected.hexdigest()}"
    event = json.loads(body)
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
    assert event["data"]["status"] == "succeeded" and headers["x-cnnlab-event-id"] == event["id"]
