"""Budgets at submit over HTTP: a spec past a limit is 422 ``budget_exceeded`` naming the field,
with the figure and the limit — for a job, and for every trial of a search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from cnnlab.settings import get_settings
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

# The issue's spec. With downloads allowed, CIFAR-10 need not be on disk to be judged.
HUGE = {
    "dataset": "cifar10",
    "model": {"arch": "cnn_deep", "channels": [1024, 1024, 1024, 1024, 1024]},
    "batch_size": 4096,
    "epochs": 1000,
    "device": "cuda",
}
SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 2}


def _app(db_url: str, **settings: Any) -> ApiClient:
    return ApiClient(create_app(settings=get_settings().model_copy(update=settings)))


@pytest.fixture
def downloads(db_url: str) -> Iterator[ApiClient]:
    with _app(db_url, download=True) as client:
        yield client


def _no_jobs(client: ApiClient, caller: Caller) -> bool:
    return client.get("/v1/jobs", headers=caller.headers).json()["items"] == []


def test_the_issue_s_spec_is_refused_with_its_figures(downloads: ApiClient, alice: Caller) -> None:
    r = downloads.post("/v1/jobs", json=HUGE, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "budget_exceeded"
    assert detail["field"] == "model.channels"
    assert detail["figure"] == "params" and detail["setting"] == "CNNLAB_MAX_MODEL_PARAMS"
    assert 84e6 < detail["value"] < 86e6 and detail["limit"] == 10_000_000
    assert "parameters" in detail["message"]
    # As a search's base: the same answer, and nothing created.
    body = {"base": HUGE, "grid": {"optimizer.lr": [0.01, 0.1]}}
    r = downloads.post("/v1/searches", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["type"] == "budget_exceeded"
    assert r.json()["detail"]["field"] == "base.model.channels"
    assert _no_jobs(downloads, alice)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"max_model_params": 1000}, "model.channels"),
        ({"max_activation_bytes": 2**20}, "batch_size"),
        ({"max_job_tflops": 1e-6}, "epochs"),
    ],
)
def test_each_limit_is_a_setting_naming_its_field(
    db_url: str, alice: Caller, mnist: Path, limits: dict[str, float], field: str
) -> None:
    with _app(db_url, **limits) as client:
        r = client.post("/v1/jobs", json=SPEC, headers=alice.headers)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert (detail["type"], detail["field"]) == ("budget_exceeded", field)
        assert detail["value"] > detail["limit"] == next(iter(limits.values()))
        assert _no_jobs(client, alice)


def test_a_search_is_refused_when_one_trial_is_past_a_limit(
    db_url: str, alice: Caller, mnist: Path
) -> None:
    # 2 epochs of the tiny spec fit; 200 do not.
    with _app(db_url, max_job_tflops=1e-2) as client:
        assert client.post("/v1/jobs", json=SPEC, headers=alice.headers).status_code == 201
        body = {"base": SPEC, "grid": {"epochs": [2, 200]}}
        r = client.post("/v1/searches", json=body, headers=alice.headers)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == "grid.epochs"  # named as a search names fields
        assert r.json()["detail"]["type"] == "budget_exceeded"
        assert len(client.get("/v1/jobs", headers=alice.headers).json()["items"]) == 1


def test_specs_within_the_default_limits_are_accepted(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    for spec in (SPEC, {**SPEC, "model": {"arch": "cnn_deep"}, "epochs": 100}):
        r = client.post("/v1/jobs", json=spec, headers=alice.headers)
        assert r.status_code == 201, r.text
