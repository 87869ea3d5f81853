"""Grid searches over HTTP: trials, status, best trial by validation accuracy, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.factories import metrics

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
        lifecycle.claim(s, job_id, "w")
    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(1, val_accuracy), last=b"l", best=b"b")
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, status, test_accuracy=round(val_accuracy - 0.02, 4))


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
        lifecycle.claim(s, ids[3], "w")
    r = client.post(f"/v1/searches/{search['id']}/cancel", headers=alice.headers)
    assert r.status_code == 202
    body = r.json()
    assert body["cancel_requested"] is True and body["status"] == "running"
    assert [t["status"] for t in body["trials"]] == ["cancelled"] * 3 + ["running"]
    assert client.get(f"/v1/jobs/{ids[3]}", headers=alice.headers).json()["cancel_requested"]
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, ids[3], JobStatus.cancelled)
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


SPACE = {"optimizer.lr": {"loguniform": [0.001, 0.3]}, "batch_size": {"choice": [16, 32]}}


def test_a_sampled_search_keeps_its_settings_and_starts_at_most_its_concurrency(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    body = {
        "base": BASE,
        "space": SPACE,
        "sampler": "random",
        "num_trials": 5,
        "seed": 3,
        "pruner": {"name": "median", "warmup_epochs": 1},
        "max_concurrent_trials": 2,
        "metric": "val_loss",
    }
    r = client.post("/v1/searches", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    search = r.json()
    assert search["grid"] == {} and search["space"] == SPACE
    assert search["sampler"] == "random" and search["num_trials"] == 5 and search["seed"] == 3
    assert search["pruner"] == {"name": "median", "warmup_epochs": 1}
    assert search["max_concurrent_trials"] == 2 and search["paused"] is False
    assert search["metric"] == "val_loss" and search["mode"] == "min"  # mode follows the metric
    assert len(search["trials"]) == 2  # the rest wait inside the search
    trial = search["trials"][0]
    assert trial["index"] == 0 and trial["status"] == "queued" and trial["epoch"] == 0
    assert trial["val_loss"] is None and trial["seconds"] == 0.0 and trial["error_type"] is None
    assert 0.001 <= trial["params"]["optimizer.lr"] <= 0.3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"space": {"optimizer.lr": {"loguniform": [-1, 1]}}}, "space.optimizer.lr"),
        ({"space": {"optimizer.lr": {"uniform": [0.5, 0.1]}}}, "space.optimizer.lr"),
        ({"space": {"model.channels": {"choice": []}}}, "space.model.channels"),
        ({"space": {"optimizer.nope": {"uniform": [0, 1]}}}, "space.optimizer.nope"),
        ({"space": SPACE, "num_trials": 10_000}, "num_trials"),
        ({"space": SPACE, "pruner": {"name": "hyperband"}}, "pruner.name"),
        (
            {"space": SPACE, "pruner": {"name": "asha", "reduction_factor": 1}},
            "pruner.reduction_factor",
        ),
        ({"space": SPACE, "sampler": "bayes"}, "sampler"),
        ({"space": SPACE, "max_concurrent_trials": 0}, "max_concurrent_trials"),
    ],
)
def test_bad_sampled_searches_are_422_naming_the_field(
    client: ApiClient, alice: Caller, mnist: Path, body: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/searches", json={"base": BASE, **body}, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field
    assert client.get("/v1/searches", headers=alice.headers).json()["items"] == []


def test_the_best_trial_follows_the_metric_and_mode(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    from api.plots import heatmap_grid
    from api.schemas import SearchRead

    search = create(client, alice, metric="val_loss")
    assert search["mode"] == "min"
    ids = [t["job_id"] for t in search["trials"]]
    for job_id, (acc, loss) in zip(
        ids, [(0.9, 0.4), (0.8, 0.2), (0.7, 0.3), (0.6, 0.5)], strict=True
    ):
        with session_scope(db_url) as s:
            lifecycle.claim(s, job_id, "w")
        with session_scope(db_url) as s:
            lifecycle.record_epoch(s, job_id, metrics(1, acc, val_loss=loss), last=b"l", best=b"b")
        with session_scope(db_url) as s:
            lifecycle.finish_job(s, job_id, JobStatus.succeeded, test_accuracy=acc)
    done = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    assert done["best_job_id"] == ids[1]  # the lowest validation loss, not the best accuracy
    assert [t["score"] for t in done["trials"]] == [0.4, 0.2, 0.3, 0.5]
    assert [t["val_loss"] for t in done["trials"]] == [0.4, 0.2, 0.3, 0.5]
    assert [t["val_accuracy"] for t in done["trials"]] == [0.9, 0.8, 0.7, 0.6]
    _, _, _, cells = heatmap_grid(SearchRead.model_validate(done))
    assert cells == [[0.4, 0.2], [0.3, 0.5]]  # the heatmap shows the search's metric
    r = client.get(f"/v1/searches/{search['id']}/heatmap.png", headers=alice.headers)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_a_pruned_trial_is_best_only_if_no_finished_trial_beats_it(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    search = create(client, alice, grid={"optimizer.lr": [0.01, 0.1]})
    ids = [t["job_id"] for t in search["trials"]]
    finish(db_url, ids[0], 0.7, JobStatus.succeeded)
    with session_scope(db_url) as s:
        lifecycle.claim(s, ids[1], "w")
    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, ids[1], metrics(1, 0.8), last=b"l", best=b"b")
    error = {"type": "pruned", "rule": "median", "epoch": 1, "value": 0.8, "message": "m"}
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, ids[1], JobStatus.pruned, error=error)
    done = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    assert done["status"] == "succeeded" and done["best_job_id"] == ids[1]
    assert done["trials"][1]["status"] == "pruned" and done["trials"][1]["pruned_epoch"] == 1


def test_pause_resume_and_retry(client: ApiClient, alice: Caller, mnist: Path, db_url: str) -> None:
    search = create(client, alice)
    url = f"/v1/searches/{search['id']}"
    ids = [t["job_id"] for t in search["trials"]]
    r = client.post(f"{url}/retry", headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"

    paused = client.post(f"{url}/pause", headers=alice.headers)
    assert paused.status_code == 202 and paused.json()["paused"] is True
    assert client.get(url, headers=alice.headers).json()["paused"] is True
    resumed = client.post(f"{url}/resume", headers=alice.headers)
    assert resumed.status_code == 202 and resumed.json()["paused"] is False

    finish(db_url, ids[0], 0.9, JobStatus.succeeded)
    finish(db_url, ids[1], 0.5, JobStatus.failed)
    retried = client.post(f"{url}/retry", headers=alice.headers)
    assert retried.status_code == 202, retried.text
    statuses = [t["status"] for t in retried.json()["trials"]]
    assert statuses[:2] == ["succeeded", "queued"]  # only the failed one runs again


def test_reading_a_search_takes_the_same_queries_whatever_its_size(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    from sqlalchemy import event

    from cnnlab.store.db import get_engine

    small = create(client, alice, grid={"optimizer.lr": [0.01, 0.1]})
    large = create(client, alice, grid={"optimizer.lr": [0.01, 0.02, 0.05, 0.1, 0.2, 0.3]})
    for search in (small, large):
        for trial in search["trials"][:2]:
            finish(db_url, trial["job_id"], 0.5, JobStatus.succeeded)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        counts = []
        for search in (small, large, small):
            statements.clear()
            r = client.get(f"/v1/searches/{search['id']}", headers=alice.headers)
            assert r.status_code == 200
            counts.append(len(statements))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[1] == counts[2], counts


def test_a_search_registers_its_best_trial_as_a_model(
    client: ApiClient, alice: Caller, db_url: str, mnist: Path
) -> None:
    target = {"name": "fashion", "alias": "candidate"}
    search = create(client, alice, grid={"seed": [1, 2]}, register_best_as=target)
    assert search["register_best_as"] == target
    for trial, accuracy in zip(search["trials"], (0.7, 0.8), strict=True):
        finish(db_url, trial["job_id"], accuracy, JobStatus.succeeded)
    model = client.get("/v1/models/fashion", headers=alice.headers).json()
    assert [v["job_id"] for v in model["versions"]] == [search["trials"][1]["job_id"]]
    assert model["aliases"] == {"candidate": 1}
    bad = {"base": BASE, "grid": GRID, "register_best_as": {"name": "Not A Name"}}
    r = client.post("/v1/searches", json=bad, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "register_best_as.name"
