"""Grid searches over HTTP: trials, status, best trial by validation accuracy, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnlab.store import runs
from cnnlab.store.db import session_scope
from cnnlab.store.models import JobStatus
from tests.api.client import ApiClient
from tests.api.conftest import Caller
from tests.store.factories import metrics

BASE = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
GRID = {"optimizer.lr": [0.01, 0.1], "batch_size": [16, 32]}


def create(client: ApiClient, caller: Caller, **body: Any) -> dict[str, Any]:
    r = client.post(
        "/v1/searches", json={"base": BASE, "grid": GRID, **body}, headers=caller.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def finish(db_url: str, job_id: str, val_accuracy: float, status: JobStatus) -> None:
    with session_scope(db_url) as s:
        runs.claim(s, job_id, "w")
    with session_scope(db_url) as s:
        runs.record_epoch(s, job_id, metrics(1, val_accuracy), last=b"l", best=b"b")
    with session_scope(db_url) as s:
        runs.finish_job(s, job_id, status, test_accuracy=round(val_accuracy - 0.02, 4))


def test_a_search_is_one_trial_job_per_grid_point(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    search = create(client, alice, metric="val_accuracy", mode="max")
    assert search["status"] == "queued" and search["best_job_id"] is None
    assert search["test_accuracy"] is None
    assert [t["params"] for t in search["trials"]] == [
        {"optimizer.lr": 0.01, "batch_size": 16},
        {"optimizer.lr": 0.01, "batch_size": 32},
        {"optimizer.lr": 0.1, "batch_size": 16},
        {"optimizer.lr": 0.1, "batch_size": 32},
    ]
    for trial in search["trials"]:
        job = client.get(f"/v1/jobs/{trial['job_id']}", headers=alice.headers).json()
        assert job["search_id"] == search["id"] and job["status"] == "queued"
        assert job["spec"]["batch_size"] == trial["params"]["batch_size"]
        assert job["spec"]["optimizer"]["lr"] == trial["params"]["optimizer.lr"]
    again = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    assert again == search


def test_best_trial_and_its_test_accuracy_once_all_ended(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    search = create(client, alice)
    ids = [t["job_id"] for t in search["trials"]]
    url = f"/v1/searches/{search['id']}"
    finish(db_url, ids[0], 0.81, JobStatus.succeeded)
    finish(db_url, ids[1], 0.93, JobStatus.succeeded)
    finish(db_url, ids[2], 0.60, JobStatus.failed)
    partial = client.get(url, headers=alice.headers).json()
    assert partial["status"] == "running" and partial["best_job_id"] is None
    assert [t["val_accuracy"] for t in partial["trials"]][:3] == [0.81, 0.93, 0.60]
    assert [t["status"] for t in partial["trials"]] == [
        "succeeded",
        "succeeded",
        "failed",
        "queued",
    ]
    finish(db_url, ids[3], 0.88, JobStatus.succeeded)
    done = client.get(url, headers=alice.headers).json()
    assert done["status"] == "succeeded" and done["best_job_id"] == ids[1]
    assert done["test_accuracy"] == pytest.approx(0.91)
    assert done["finished_at"] is not None


def test_cancel_a_search(client: ApiClient, alice: Caller, mnist: Path, db_url: str) -> None:
    search = create(client, alice)
    ids = [t["job_id"] for t in search["trials"]]
    with session_scope(db_url) as s:
        runs.claim(s, ids[3], "w")
    r = client.post(f"/v1/searches/{search['id']}/cancel", headers=alice.headers)
    assert r.status_code == 202
    body = r.json()
    assert body["cancel_requested"] is True and body["status"] == "running"
    assert [t["status"] for t in body["trials"]] == ["cancelled"] * 3 + ["running"]
    assert client.get(f"/v1/jobs/{ids[3]}", headers=alice.headers).json()["cancel_requested"]
    with session_scope(db_url) as s:
        runs.finish_job(s, ids[3], JobStatus.cancelled)
    body = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    assert body["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": {"optimizer.lr": [0.1, -1]}}, "grid.optimizer.lr"),
        ({"grid": {"optimizer.colour": [1]}}, "grid.optimizer.colour"),
        ({"grid": {}}, "grid"),
        ({"grid": {"batch_size": 32}}, "grid.batch_size"),
        ({"grid": {"seed": list(range(9)), "epochs": list(range(1, 9))}}, "grid"),
        ({"base": {**BASE, "val_size": 1000}}, "base.val_size"),
        ({"base": {**BASE, "optimizer": {"lr": 0}}}, "base.optimizer.lr"),
        ({"base": {**BASE, "dataset": "cifar10"}}, None),
        ({"metric": "test_accuracy"}, "metric"),
        ({"mode": "sideways"}, "mode"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_searches_are_422_naming_the_field(
    client: ApiClient, alice: Caller, mnist: Path, body: dict[str, Any], field: str | None
) -> None:
    r = client.post(
        "/v1/searches", json={"base": BASE, "grid": GRID, **body}, headers=alice.headers
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    if field is None:
        assert detail["type"] == "dataset_unavailable"
    else:
        assert detail["field"] == field, detail
    assert client.get("/v1/searches", headers=alice.headers).json()["items"] == []
    assert client.get("/v1/jobs", headers=alice.headers).json()["items"] == []
