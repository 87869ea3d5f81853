"""One view per resource: the API's answer and the webhook payload of a search are the same
object (``register_best_as`` and each trial's ``error_message`` included), and each carries the
``actions`` the server allows now, which the dashboard and the client show without deciding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cnnlab import lifecycle
from cnnlab.status import JobStatus
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Job, WebhookEvent
from cnnlab.webhooks.subscriptions import create_webhook
from tests.api.conftest import SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

TIMES = ("created_at", "started_at", "finished_at")


def _end(db_url: str, job_id: str, status: JobStatus) -> None:
    with session_scope(db_url) as s:
        attempt = s.scalar(select(Job.attempts).where(Job.id == job_id))
        assert lifecycle.finish_job(s, job_id, status, attempt=attempt)


def _untimed(view: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in view.items() if k not in TIMES}
    if "trials" in out:
        out["trials"] = [_untimed(t) for t in out["trials"]]
    return out


def test_a_job_s_actions_follow_its_life(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
    assert job["actions"] == ["cancel"]
    give_model(db_url, job["id"], trained)
    running = client.get(f"/v1/jobs/{job['id']}", headers=alice.headers).json()
    assert running["actions"] == ["cancel", "register"]
    _end(db_url, job["id"], JobStatus.succeeded)
    done = client.get(f"/v1/jobs/{job['id']}", headers=alice.headers).json()
    assert done["actions"] == ["register", "delete"]


def test_a_search_s_actions_and_its_webhook_payload_are_the_api_s_view(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    with session_scope(db_url) as s:
        create_webhook(s, alice.user.id, "http://127.0.0.1:9/hook", ["search.succeeded"],
                       allow_private=True)  # fmt: skip
    body = {
        "base": SPEC,
        "grid": {"optimizer.lr": [0.01, 0.1]},
        "register_best_as": {"name": "viewed", "alias": "candidate"},
    }
    search = client.post("/v1/searches", json=body, headers=alice.headers).json()
    url = f"/v1/searches/{search['id']}"
    assert search["actions"] == ["pause", "cancel"]
    paused = client.post(f"{url}/pause", headers=alice.headers).json()
    assert paused["actions"] == ["resume", "cancel"]
    client.post(f"{url}/resume", headers=alice.headers)

    first, second = (t["job_id"] for t in search["trials"])
    give_model(db_url, first, trained)
    _end(db_url, first, JobStatus.succeeded)
    give_model(db_url, second, trained)
    _end(db_url, second, JobStatus.failed)
    shown = client.get(url, headers=alice.headers).json()
    assert shown["status"] == "succeeded" and shown["actions"] == ["retry", "delete"]
    assert shown["register_best_as"] == {"name": "viewed", "alias": "candidate"}
    with session_scope(db_url) as s:
        event = s.scalars(select(WebhookEvent).where(WebhookEvent.type == "search.succeeded")).one()
        payload = event.data
    assert _untimed(payload) == _untimed(shown)
    assert payload["trials"][1]["error_message"] == shown["trials"][1]["error_message"]
