"""Deleting ended jobs and searches (``DELETE /v1/jobs/{id}``, ``/v1/searches/{id}``), what they
free, what they refuse, and the per-user storage quota at submit and at registration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from api.main import create_app
from cnnlab import lifecycle
from cnnlab.settings import get_settings
from cnnlab.status import JobStatus
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Checkpoint, EpochMetric, Job, Search
from tests.api.conftest import GRID, SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient


def _ended_job(
    client: ApiClient, caller: Caller, db_url: str, trained: TrainedModel, epochs: int = 2
) -> str:
    job_id: str = client.post("/v1/jobs", json=SPEC, headers=caller.headers).json()["id"]
    give_model(db_url, job_id, trained, epochs=epochs)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=0.5)
    return job_id


def _rows(db_url: str, job_id: str) -> tuple[int, int, int]:
    with session_scope(db_url) as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(t).where(col == job_id)) or 0)
            for t, col in (
                (Job, Job.id),
                (EpochMetric, EpochMetric.job_id),
                (Checkpoint, Checkpoint.job_id),
            )
        )


def _used(client: ApiClient, caller: Caller) -> int:
    used: int = client.get("/v1/me", headers=caller.headers).json()["storage"]["used_bytes"]
    return used


def test_deleting_an_ended_job_removes_it_and_frees_its_bytes(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job_id = _ended_job(client, alice, db_url, trained)
    assert _rows(db_url, job_id) == (1, 2, 2)
    before = _used(client, alice)
    assert before >= 2 * len(trained.checkpoint)

    r = client.request("DELETE", f"/v1/jobs/{job_id}", headers=alice.headers)
    assert r.status_code == 204 and r.content == b""
    assert _rows(db_url, job_id) == (0, 0, 0)
    assert _used(client, alice) == before - 2 * len(trained.checkpoint)
    assert client.get(f"/v1/jobs/{job_id}", headers=alice.headers).status_code == 404
    assert client.request("DELETE", f"/v1/jobs/{job_id}", headers=alice.headers).status_code == 404


def test_a_queued_or_running_job_is_409_and_kept(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    queued = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"]
    r = client.request("DELETE", f"/v1/jobs/{queued}", headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"
    assert "queued" in r.json()["detail"]["message"]
    give_model(db_url, queued, trained)  # now running, with metrics and checkpoints
    assert client.request("DELETE", f"/v1/jobs/{queued}", headers=alice.headers).status_code == 409
    assert _rows(db_url, queued) == (1, 1, 2)


def test_another_users_job_is_404_and_kept(
    client: ApiClient,
    alice: Caller,
    bob: Caller,
    mnist: Path,
    db_url: str,
    trained: TrainedModel,
) -> None:
    job_id = _ended_job(client, alice, db_url, trained, epochs=1)
    r = client.request("DELETE", f"/v1/jobs/{job_id}", headers=bob.headers)
    missing = client.request("DELETE", f"/v1/jobs/{'0' * 32}", headers=bob.headers)
    assert r.status_code == missing.status_code == 404
    assert r.json()["detail"]["type"] == "not_found"
    assert _rows(db_url, job_id) == (1, 1, 2)


def test_a_search_trial_is_deleted_only_with_its_search(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    body = {"base": SPEC, "grid": GRID}
    search = client.post("/v1/searches", json=body, headers=alice.headers).json()
    trial_ids = [t["job_id"] for t in search["trials"]]
    give_model(db_url, trial_ids[0], trained)

    # A trial: 409 naming the search. A running search: 409. Someone else's: 404.
    r = client.request("DELETE", f"/v1/jobs/{trial_ids[0]}", headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["search_id"] == search["id"]
    assert "delete its search" in r.json()["detail"]["message"]
    assert (
        client.request("DELETE", f"/v1/searches/{search['id']}", headers=alice.headers).status_code
        == 409
    )
    assert (
        client.request("DELETE", f"/v1/searches/{search['id']}", headers=bob.headers).status_code
        == 404
    )

    # Once every trial has ended, the search goes with all of them.
    client.post(f"/v1/searches/{search['id']}/cancel", headers=alice.headers)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, trial_ids[0], JobStatus.cancelled)
    assert client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()["status"] == (
        "cancelled"
    )
    before = _used(client, alice)
    r = client.request("DELETE", f"/v1/searches/{search['id']}", headers=alice.headers)
    assert r.status_code == 204
    assert _used(client, alice) == before - 2 * len(trained.checkpoint)
    for job_id in trial_ids:
        assert _rows(db_url, job_id) == (0, 0, 0)
    with session_scope(db_url) as s:
        assert s.get(Search, search["id"]) is None
    assert client.get(f"/v1/searches/{search['id']}", headers=alice.headers).status_code == 404
    assert (
        client.request("DELETE", f"/v1/searches/{search['id']}", headers=alice.headers).status_code
        == 404
    )


def test_a_registered_model_version_outlives_its_job(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job_id = _ended_job(client, alice, db_url, trained, epochs=1)
    r = client.post("/v1/models", json={"name": "keeper", "job_id": job_id}, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert client.request("DELETE", f"/v1/jobs/{job_id}", headers=alice.headers).status_code == 204

    version = client.get("/v1/models/keeper/versions/1", headers=alice.headers)
    assert version.status_code == 200 and version.json()["job_id"] == job_id
    r = client.post(
        "/v1/models/keeper/predict",
        json={"instances": [[[0] * 28] * 28]},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    # Its bytes still count against the owner's storage.
    storage = client.get("/v1/me", headers=alice.headers).json()["storage"]
    assert storage["checkpoint_bytes"] == 0 and storage["model_bytes"] == len(trained.checkpoint)


def test_submitting_past_the_storage_quota_is_422(
    alice: Caller,
    mnist: Path,
    db_url: str,
    trained: TrainedModel,
    monkeypatch: object,
) -> None:
    settings = get_settings().model_copy(update={"max_storage_bytes": len(trained.checkpoint)})
    with ApiClient(create_app(settings=settings)) as client:
        job_id = _ended_job(client, alice, db_url, trained, epochs=1)  # two checkpoints stored
        for path, body in (("/v1/jobs", SPEC), ("/v1/searches", {"base": SPEC, "grid": GRID})):
            r = client.post(path, json=body, headers=alice.headers)
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert detail["type"] == "storage_quota"
            assert detail["used_bytes"] == 2 * len(trained.checkpoint)
            assert detail["limit_bytes"] == len(trained.checkpoint)
        # Deleting frees room again.
        assert (
            client.request("DELETE", f"/v1/jobs/{job_id}", headers=alice.headers).status_code == 204
        )
        assert client.post("/v1/jobs", json=SPEC, headers=alice.headers).status_code == 201


def test_registering_a_version_past_the_storage_quota_is_422(
    alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    # Before: register_version never checked the quota; 20 registrations past a 600 kB quota
    # all answered 201 while POST /v1/jobs was already refused.
    size = len(trained.checkpoint)
    settings = get_settings().model_copy(update={"max_storage_bytes": 3 * size})
    with ApiClient(create_app(settings=settings)) as client:
        job_id = _ended_job(client, alice, db_url, trained, epochs=1)  # 2 checkpoints: 2 sizes
        body = {"name": "capped", "job_id": job_id}
        assert client.post("/v1/models", json=body, headers=alice.headers).status_code == 201
        for _ in range(3):
            r = client.post("/v1/models", json=body, headers=alice.headers)
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert detail["type"] == "storage_quota" and detail["writing"] == "model_version"
            assert detail["used_bytes"] == 4 * size and detail["limit_bytes"] == 3 * size
        assert _used(client, alice) == 3 * size
        # Deleting the job frees room for more versions (the copies outlive it).
        assert (
            client.request("DELETE", f"/v1/jobs/{job_id}", headers=alice.headers).status_code == 204
        )
        versions = client.get("/v1/models/capped", headers=alice.headers).json()["versions"]
        assert len(versions) == 1
