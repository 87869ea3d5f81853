"""``GET /v1/me``: the caller's name and what counts against their limits."""

from __future__ import annotations

from pathlib import Path

from api.main import create_app
from api.settings import ApiSettings
from cnnlab.settings import get_settings
from tests.api.conftest import SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient


def test_me_counts_storage_and_active_jobs(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    r = client.get("/v1/me", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == {
        "name": alice.user.name,
        "storage": {
            "used_bytes": 0,
            "checkpoint_bytes": 0,
            "model_bytes": 0,
            "dataset_bytes": 0,
            "input_bytes": 0,
            "limit_bytes": get_settings().max_storage_bytes,
        },
        "active_jobs": {"count": 0, "limit": ApiSettings().max_active_jobs},
    }
    job_id = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"]
    give_model(db_url, job_id, trained)  # a "last" and a "best" checkpoint
    me = client.get("/v1/me", headers=alice.headers).json()
    assert me["active_jobs"]["count"] == 1
    assert me["storage"]["checkpoint_bytes"] == me["storage"]["used_bytes"]
    assert me["storage"]["used_bytes"] == 2 * len(trained.checkpoint)
    # Bob's figures are his own.
    theirs = client.get("/v1/me", headers=bob.headers).json()
    assert theirs["name"] == bob.user.name
    assert theirs["storage"]["used_bytes"] == 0 and theirs["active_jobs"]["count"] == 0


def test_no_storage_limit_is_null(db_url: str, alice: Caller) -> None:
    settings = get_settings().model_copy(update={"max_storage_bytes": 0})
    with ApiClient(create_app(settings=settings)) as client:
        me = client.get("/v1/me", headers=alice.headers).json()
    assert me["storage"]["limit_bytes"] is None


def test_me_needs_a_token(client: ApiClient) -> None:
    assert client.get("/v1/me").status_code == 401
