"""Jobs over HTTP: submit with validation, read, list with paging, cancel, metrics, checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab import lifecycle
from cnnlab.store import jobs as store
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.factories import metrics

SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 2}


def submit(client: ApiClient, caller: Caller, **overrides: Any) -> dict[str, Any]:
    r = client.post("/v1/jobs", json={**SPEC, **overrides}, headers=caller.headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_submit_then_read(client: ApiClient, alice: Caller, mnist: Path) -> None:
    job = submit(client, alice)
    assert job["status"] == "queued" and job["attempts"] == 0 and job["epoch"] == 0
    assert job["spec"]["optimizer"] == {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
    }
    for key in (
        "created_at",
        "started_at",
        "finished_at",
        "best_val_accuracy",
        "test_accuracy",
        "error",
    ):
        assert key in job
    assert job["created_at"].endswith("Z")
    r = client.get(f"/v1/jobs/{job['id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json() == job


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dataset": "imagenet"}, "dataset"),
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
        ({"optimizer": {"name": "sgd", "momentum": 1.5}}, "optimizer.momentum"),
        ({"val_size": 300}, "val_size"),
        ({"train_size": 10_000}, "train_size"),
        ({"colour": "blue"}, "colour"),
        ({"model": {"arch": "resnet9000"}}, "model.arch"),
        ({"device": "tpu"}, "device"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_specs_are_422_naming_the_field(
    client: ApiClient, alice: Caller, mnist: Path, overrides: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/jobs", json={**SPEC, **overrides}, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field and field in detail["message"]


def test_missing_data_is_422_naming_dataset_and_paths(
    client: ApiClient, alice: Caller, data_dir: Path
) -> None:
    r = client.post("/v1/jobs", json={**SPEC, "dataset": "cifar10"}, headers=alice.headers)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["type"] == "dataset_unavailable" and detail["dataset"] == "cifar10"
    assert str(data_dir / "cifar-10-batches-py") in detail["tried"]
    assert "CNNLAB_DOWNLOAD" in detail["message"]


def test_body_must_be_a_json_spec(client: ApiClient, alice: Caller) -> None:
    r = client.post(
        "/v1/jobs",
        content=b"{not json",
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"]["type"] == "invalid_request"
    r = client.post("/v1/jobs", json={}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset"


def test_list_pages_newest_first_and_only_mine(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    mine = [submit(client, alice, seed=i)["id"] for i in range(5)]
    submit(client, bob)
    seen: list[str] = []
    url = "/v1/jobs?limit=2"
    pages = 0
    while url:
        r = client.get(url, headers=alice.headers)
        assert r.status_code == 200
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [j["id"] for j in body["items"]]
        pages += 1
        url = f"/v1/jobs?limit=2&cursor={body['next']}" if body["next"] else ""
    assert pages == 3 and seen == mine[::-1]
    assert client.get("/v1/jobs?limit=0", headers=alice.headers).status_code == 422
    assert client.get("/v1/jobs?limit=201", headers=alice.headers).status_code == 422
    r = client.get("/v1/jobs?cursor=garbage", headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "cursor"
    r = client.get("/v1/jobs?status=queued&limit=200", headers=alice.headers)
    assert {j["id"] for j in r.json()["items"]} == set(mine)


def test_cancel(client: ApiClient, alice: Caller, mnist: Path, db_url: str) -> None:
    queued = submit(client, alice)
    r = client.post(f"/v1/jobs/{queued['id']}/cancel", headers=alice.headers)
    assert r.status_code == 202
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"] is not None

    running = submit(client, alice)
    with session_scope(db_url) as s:
        assert lifecycle.claim(s, running["id"], "w") is not None
    r = client.post(f"/v1/jobs/{running['id']}/cancel", headers=alice.headers)
    assert r.status_code == 202
    assert r.json()["status"] == "running" and r.json()["cancel_requested"] is True
    with session_scope(db_url) as s:
        assert store.cancel_requested(s, running["id"])
        lifecycle.finish_job(s, running["id"], JobStatus.cancelled)
    r = client.post(f"/v1/jobs/{running['id']}/cancel", headers=alice.headers)
    assert r.status_code == 202 and r.json()["status"] == "cancelled"


def test_progress_metrics_and_checkpoints(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    job_id = submit(client, alice)["id"]
    r = client.get(f"/v1/jobs/{job_id}/checkpoint", headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"
    assert client.get(f"/v1/jobs/{job_id}/metrics", headers=alice.headers).json() == []

    best = _tensor_file({"w": torch.ones(2)})
    last = _tensor_file({"w": torch.zeros(2)})
    with session_scope(db_url) as s:
        lifecycle.claim(s, job_id, "w")
    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(1, 0.8), last=best, best=best)
    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(2, 0.7), last=last, best=None)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=0.79)

    job = client.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()
    assert job["status"] == "succeeded" and job["epoch"] == 2 and job["attempts"] == 1
    assert job["best_val_accuracy"] == pytest.approx(0.8)
    assert job["test_accuracy"] == pytest.approx(0.79)
    rows = client.get(f"/v1/jobs/{job_id}/metrics", headers=alice.headers).json()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"}

    r = client.get(f"/v1/jobs/{job_id}/checkpoint", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-checkpoint-epoch"] == "1"
    assert torch.equal(_load(r.content)["w"], torch.ones(2))
    r = client.get(f"/v1/jobs/{job_id}/checkpoint?kind=last", headers=alice.headers)
    assert torch.equal(_load(r.content)["w"], torch.zeros(2))
    r = client.get(f"/v1/jobs/{job_id}/checkpoint?kind=worst", headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "kind"


def _tensor_file(obj: dict[str, torch.Tensor]) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _load(data: bytes) -> dict[str, torch.Tensor]:
    import io

    return torch.load(io.BytesIO(data), weights_only=True)


def test_health_and_docs_need_no_token(client: ApiClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/jobs/{job_id}/predict" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_a_job_the_broker_cannot_take_fails_visibly(
    client: ApiClient, alice: Caller, mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab.settings import get_settings

    # Nothing listens on port 1: the real Celery client fails to publish.
    monkeypatch.setenv("CNNLAB_BROKER_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    job = submit(client, alice)
    after = client.get(f"/v1/jobs/{job['id']}", headers=alice.headers).json()
    assert after["status"] == "failed"
    assert after["error"]["type"] == "queue_unavailable"
