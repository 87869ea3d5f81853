"""POST /v1/searches/plan: the trials a body would run and what they could cost; nothing created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.factories import metrics

# The tiny MNIST of the fixture has 300 train images: 250 left for training after validation.
BASE = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 2, "device": "cpu"}
GRID = {"optimizer.lr": [0.01, 0.1], "batch_size": [16, 32]}
SPACE = {"optimizer.lr": {"loguniform": [0.001, 0.3]}, "batch_size": {"choice": [16, 32]}}


def plan(client: ApiClient, caller: Caller, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/searches/plan", json={"base": BASE, **body}, headers=caller.headers)
    assert r.status_code == 200, r.text
    return r.json()


def nothing_created(client: ApiClient, caller: Caller) -> bool:
    searches = client.get("/v1/searches", headers=caller.headers).json()["items"]
    jobs = client.get("/v1/jobs", headers=caller.headers).json()["items"]
    return searches == [] and jobs == []


def test_a_grid_plan_lists_every_point_and_its_cost(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    body = plan(client, alice, grid=GRID)
    assert body["sampler"] == "grid" and body["num_trials"] == 4
    assert body["metric"] == "val_accuracy" and body["mode"] == "max"
    assert [t["params"] for t in body["trials"]] == [
        {"optimizer.lr": 0.01, "batch_size": 16},
        {"optimizer.lr": 0.01, "batch_size": 32},
        {"optimizer.lr": 0.1, "batch_size": 16},
        {"optimizer.lr": 0.1, "batch_size": 32},
    ]
    assert all(t["epochs"] == 2 and t["train_images"] == 250 for t in body["trials"])
    assert body["max_epochs"] == 8 and body["max_images"] == 8 * 250
    assert not any(t["depends_on_scores"] for t in body["trials"])
    # Nothing measured on this server yet: a stated default speed.
    [basis] = body["basis"]
    assert basis["source"] == "default" and basis["epochs"] == 0
    assert basis["dataset"] == "mnist" and basis["device"] == "cpu"
    assert "default" in basis["description"]
    assert body["sequential"] is True
    assert body["seconds"] == pytest.approx(8 * 250 / basis["images_per_second"], rel=1e-3)
    assert nothing_created(client, alice)


def test_the_estimate_uses_this_servers_measured_speed(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    # Two recorded epochs of an MNIST job on the cpu at 1000 images/s (the factory's figure),
    # and one of another device, which does not count.
    jobs = [
        client.post("/v1/jobs", json=spec, headers=alice.headers).json()["id"]
        for spec in (BASE, {**BASE, "device": "auto"})
    ]
    cpu_job, gpu_job = jobs
    for job_id, epochs in ((cpu_job, 2), (gpu_job, 1)):
        with session_scope(db_url) as s:
            lifecycle.claim(s, job_id, "w")
        for epoch in range(1, epochs + 1):
            with session_scope(db_url) as s:
                row = {**metrics(epoch, 0.5), "images_per_second": 1000.0 * (epoch + 1)}
                if job_id == gpu_job:
                    row["images_per_second"] = 50_000.0
                lifecycle.record_epoch(s, job_id, row, last=b"l", best=None)
    body = plan(client, alice, grid=GRID)
    [basis] = body["basis"]
    assert basis["source"] == "measured" and basis["epochs"] == 2
    assert basis["images_per_second"] == pytest.approx(2500.0)  # median of 2000 and 3000
    assert "median of the last 2 epoch(s)" in basis["description"]
    assert body["seconds"] == pytest.approx(8 * 250 / 2500.0)
    # The plan created nothing more.
    assert len(client.get("/v1/jobs", headers=alice.headers).json()["items"]) == 2


def test_a_random_plan_lists_the_trials_the_search_then_runs(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    body = {"space": SPACE, "num_trials": 6, "seed": 7, "max_concurrent_trials": 6}
    planned = plan(client, alice, **body)
    assert planned["sampler"] == "random" and planned["num_trials"] == 6
    assert planned["max_concurrent_trials"] == 6
    params = [t["params"] for t in planned["trials"]]
    assert len({str(p) for p in params}) == 6
    assert all(0.001 <= p["optimizer.lr"] <= 0.3 and p["batch_size"] in (16, 32) for p in params)
    assert plan(client, alice, **body)["trials"] == planned["trials"]  # the same body, the same
    assert plan(client, alice, **{**body, "seed": 8})["trials"] != planned["trials"]
    assert nothing_created(client, alice)

    r = client.post("/v1/searches", json={"base": BASE, **body}, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert [t["params"] for t in r.json()["trials"]] == params


def test_a_tpe_plan_says_which_trials_depend_on_scores(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    space = {**SPACE, "epochs": {"int": [1, 3]}}
    tpe = {"space": space, "sampler": "tpe", "num_trials": 12, "seed": 1}
    body = plan(client, alice, **tpe, max_concurrent_trials=2)
    trials = body["trials"]
    assert len(trials) == 12
    known = [t for t in trials if not t["depends_on_scores"]]
    later = [t for t in trials if t["depends_on_scores"]]
    assert len(known) == 3 and trials[:3] == known  # max(2, min(10, 12 // 4)) random draws
    assert all(t["params"] is None for t in later)
    # A later trial counts at the most it could cost: the space's most epochs.
    assert all(t["epochs"] == 3 and t["train_images"] == 250 for t in later)
    assert body["max_epochs"] == sum(t["epochs"] for t in trials)
    assert any("TPE" in note for note in body["notes"])
    # Trials the search starts with at once are drawn now, as planned.
    wide = plan(client, alice, **tpe, max_concurrent_trials=5)
    assert [t["depends_on_scores"] for t in wide["trials"]] == [False] * 5 + [True] * 7
    assert wide["trials"][:3] == known
    created = client.post(
        "/v1/searches",
        json={"base": BASE, **tpe, "max_concurrent_trials": 5},
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    assert [t["params"] for t in created.json()["trials"]] == [
        t["params"] for t in wide["trials"][:5]
    ]


def test_the_plan_of_a_pruned_search_counts_every_epoch(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    pruner = {"name": "asha", "min_epochs": 1, "reduction_factor": 2}
    body = plan(client, alice, grid=GRID, pruner=pruner, metric="val_loss")
    assert body["pruner"] == pruner and body["mode"] == "min"
    assert body["max_epochs"] == 8
    assert any("pruner" in note for note in body["notes"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"space": {"optimizer.lr": {"loguniform": [0, 1]}}, "num_trials": 2},
            "space.optimizer.lr",
        ),
        ({"space": {"optimizer.colour": {"uniform": [0, 1]}}}, "space.optimizer.colour"),
        ({"space": SPACE, "num_trials": 0}, "num_trials"),
        ({"space": SPACE, "sampler": "annealing"}, "sampler"),
        ({"grid": GRID, "pruner": {"name": "hyperband"}}, "pruner.name"),
        ({"grid": GRID, "max_concurrent_trials": 0}, "max_concurrent_trials"),
        ({"grid": {"batch_size": [16, 10_000]}}, "grid.batch_size"),
        ({"grid": GRID, "base": {**BASE, "val_size": 1000}}, "base.val_size"),
        ({"grid": GRID, "mode": "sideways"}, "mode"),
        ({"grid": GRID, "seed": "x"}, "seed"),
    ],
)
def test_a_bad_plan_is_422_naming_the_field(
    client: ApiClient, alice: Caller, mnist: Path, body: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/searches/plan", json={"base": BASE, **body}, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field
    assert nothing_created(client, alice)
