"""/v1/webhooks over the real app: create (the secret shown once), list, read, delete, rotate
the secret, the deliveries with their attempts; per user, at most so many; 422 for URLs and
events cnnlab will not take."""

from __future__ import annotations

import pytest

from api.main import create_app
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Webhook
from cnnlab.webhooks import outbox
from cnnlab.webhooks.secret_box import unseal
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

PUBLIC = "https://93.184.215.14/cnnlab-hook"  # a public address literal: no DNS needed
BODY = {"url": PUBLIC, "events": ["job.succeeded", "search.failed"]}


def test_create_read_list_delete(client: ApiClient, alice: Caller) -> None:
    r = client.post("/v1/webhooks", json=BODY, headers=alice.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["url"] == PUBLIC and created["events"] == BODY["events"]
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    hook_id = created["id"]
    # The secret is shown once: no read shows it again.
    read = client.get(f"/v1/webhooks/{hook_id}", headers=alice.headers).json()
    assert "secret" not in read and read["id"] == hook_id
    listed = client.get("/v1/webhooks", headers=alice.headers).json()
    assert [h["id"] for h in listed["items"]] == [hook_id] and listed["next"] is None
    assert all("secret" not in h for h in listed["items"])
    other = client.post("/v1/webhooks", json=BODY, headers=alice.headers).json()
    assert other["secret"] != created["secret"]
    r = client.request("DELETE", f"/v1/webhooks/{hook_id}", headers=alice.headers)
    assert r.status_code == 204
    assert client.get(f"/v1/webhooks/{hook_id}", headers=alice.headers).status_code == 404
    assert (
        client.request("DELETE", f"/v1/webhooks/{hook_id}", headers=alice.headers).status_code
        == 404
    )
    listed = client.get("/v1/webhooks", headers=alice.headers).json()
    assert [h["id"] for h in listed["items"]] == [other["id"]]


def test_another_users_webhook_is_404_like_a_missing_one(
    client: ApiClient, alice: Caller, bob: Caller
) -> None:
    hook_id = client.post("/v1/webhooks", json=BODY, headers=alice.headers).json()["id"]
    for path in (f"/v1/webhooks/{hook_id}", f"/v1/webhooks/{hook_id}/deliveries"):
        theirs = client.get(path, headers=bob.headers)
        missing = client.get(path.replace(hook_id, "0" * 32), headers=bob.headers)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"]["type"] == "not_found"
    assert (
        client.request("DELETE", f"/v1/webhooks/{hook_id}", headers=bob.headers).status_code == 404
    )
    assert client.get("/v1/webhooks", headers=bob.headers).json()["items"] == []
    assert client.get(f"/v1/webhooks/{hook_id}", headers=alice.headers).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:8000/hook", "events": ["job.failed"]}, "url"),
        ({"url": "http://localhost/hook", "events": ["job.failed"]}, "url"),
        ({"url": "http://10.0.0.7/hook", "events": ["job.failed"]}, "url"),
        ({"url": "http://169.254.169.254/latest", "events": ["job.failed"]}, "url"),
        ({"url": "http://[::1]/hook", "events": ["job.failed"]}, "url"),
        ({"url": "ftp://93.184.215.14/hook", "events": ["job.failed"]}, "url"),
        ({"url": "not a url", "events": ["job.failed"]}, "url"),
        ({"url": "https://93.184.215.14/ho\x7fok", "events": ["job.failed"]}, "url"),
        ({"url": "http://[2002:a00:1::1]/hook", "events": ["job.failed"]}, "url"),
        ({"url": "http://[fec0::1]/hook", "events": ["job.failed"]}, "url"),
        ({"url": "http://192.0.0.170/hook", "events": ["job.failed"]}, "url"),
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC, "events": ["job.exploded"]}, "events.0"),
        ({"url": PUBLIC}, "events"),
        ({"url": PUBLIC, "events": ["job.failed"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field(
    client: ApiClient, alice: Caller, body: dict[str, object], field: str
) -> None:
    r = client.post("/v1/webhooks", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field


def test_private_urls_are_taken_with_the_setting(
    db_url: str, alice: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_WEBHOOK_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    with ApiClient(create_app()) as client:
        body = {"url": "http://127.0.0.1:8000/hook", "events": ["job.failed"]}
        r = client.post("/v1/webhooks", json=body, headers=alice.headers)
        assert r.status_code == 201, r.text


def test_deliveries_list_each_attempt(client: ApiClient, alice: Caller, db_url: str) -> None:
    hook_id = client.post("/v1/webhooks", json=BODY, headers=alice.headers).json()["id"]
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=alice.headers)
    assert r.status_code == 200 and r.json() == {"items": [], "next": None}
    with session_scope(db_url) as s:
        event_id = outbox.record(s, alice.user.id, "job.succeeded", {"id": "job-1"})
        assert outbox.record(s, alice.user.id, "job.failed", {"id": "job-2"}) is None
    [delivery] = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=alice.headers).json()[
        "items"
    ]
    assert delivery["event_id"] == event_id and delivery["event_type"] == "job.succeeded"
    assert delivery["state"] == "pending" and delivery["attempts"] == []
    assert delivery["next_attempt_at"] is not None
    r = client.get(f"/v1/webhooks/{hook_id}/deliveries?limit=0", headers=alice.headers)
    assert r.status_code == 422


def test_rotating_a_secret_shows_the_new_one_once_and_signs_with_it(
    client: ApiClient, alice: Caller, bob: Caller, db_url: str
) -> None:
    created = client.post("/v1/webhooks", json=BODY, headers=alice.headers).json()
    r = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=alice.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["id"] == created["id"] and rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert "secret" not in client.get(f"/v1/webhooks/{created['id']}", headers=alice.headers).json()
    with session_scope(db_url) as s:
        stored = s.get(Webhook, created["id"])
        assert stored is not None and unseal(stored.secret) == rotated["secret"]
        assert rotated["secret"] not in stored.secret
    r = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=bob.headers)
    assert r.status_code == 404


def test_a_user_has_at_most_the_settings_webhooks(
    db_url: str, alice: Caller, bob: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: no cap; one user could fan every event out to any number of receivers.
    monkeypatch.setenv("CNNLAB_MAX_WEBHOOKS_PER_USER", "2")
    get_settings.cache_clear()
    with ApiClient(create_app()) as client:
        for _ in range(2):
            assert client.post("/v1/webhooks", json=BODY, headers=alice.headers).status_code == 201
        r = client.post("/v1/webhooks", json=BODY, headers=alice.headers)
        assert r.status_code == 422 and r.json()["detail"]["type"] == "too_many_webhooks"
        assert client.post("/v1/webhooks", json=BODY, headers=bob.headers).status_code == 201
        hook_id = client.get("/v1/webhooks", headers=alice.headers).json()["items"][0]["id"]
        client.request("DELETE", f"/v1/webhooks/{hook_id}", headers=alice.headers)
        assert client.post("/v1/webhooks", json=BODY, headers=alice.headers).status_code == 201
