"""The training recipe over HTTP: warm starts checked at submit, architectures' own defaults,
adam refusing momentum, each epoch's learning rate and a job stopped early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab import lifecycle
from cnnlab.status import JobStatus
from cnnlab.store.db import session_scope
from tests.api.conftest import MODEL_JOB_SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient
from tests.utils.factories import metrics


def _submit(client: ApiClient, caller: Caller, **overrides: Any) -> Any:
    return client.post("/v1/jobs", json={**MODEL_JOB_SPEC, **overrides}, headers=caller.headers)


def test_a_warm_start_from_the_callers_own_job_or_model_is_accepted_and_pinned(
    client: ApiClient, alice: Caller, job_id: str
) -> None:
    r = _submit(client, alice, init={"job_id": job_id})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["init"]["job_id"] == job_id

    for version in (1, 2):
        r = client.post(
            "/v1/models", json={"name": "base", "job_id": job_id}, headers=alice.headers
        )
        assert r.status_code == 201 and r.json()["version"] == version
    # No alias: the newest version, pinned in the job's spec so it records what it started from.
    r = _submit(client, alice, init={"model": "base"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["init"] == {
        "model": "base",
        "version": 2,
        "alias": None,
        "job_id": None,
    }
    r = _submit(client, alice, init={"model": "base", "version": 1})
    assert r.json()["spec"]["init"]["version"] == 1


def test_a_warm_start_from_someone_elses_model_or_job_is_not_found(
    client: ApiClient, alice: Caller, bob: Caller, job_id: str
) -> None:
    client.post("/v1/models", json={"name": "base", "job_id": job_id}, headers=alice.headers)
    for init in ({"model": "base"}, {"job_id": job_id}, {"model": "base", "version": 9}):
        r = _submit(client, bob, init=init)
        assert r.status_code == 404, (init, r.text)
        assert r.json()["detail"]["field"] == "init"
    r = _submit(client, alice, init={"model": "base", "version": 9})
    assert r.status_code == 404 and r.json()["detail"]["field"] == "init"


def test_a_warm_start_into_another_architecture_is_422_naming_init(
    client: ApiClient, alice: Caller, job_id: str
) -> None:
    for model in ({"arch": "cnn_deep"}, {"arch": "cnn", "channels": [8]}):
        r = _submit(client, alice, init={"job_id": job_id}, model=model)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["field"] == "init"
    r = _submit(client, alice, init={"job_id": job_id, "version": 1})
    assert r.status_code == 422 and r.json()["detail"]["field"].startswith("init")


def test_a_search_pins_its_trials_warm_start(client: ApiClient, alice: Caller, job_id: str) -> None:
    client.post("/v1/models", json={"name": "base", "job_id": job_id}, headers=alice.headers)
    body = {"base": {**MODEL_JOB_SPEC, "init": {"model": "base"}}, "grid": {"seed": [0, 1]}}
    r = client.post("/v1/searches", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    for trial in r.json()["trials"]:
        job = client.get(f"/v1/jobs/{trial['job_id']}", headers=alice.headers).json()
        assert job["spec"]["init"]["version"] == 1


def test_adam_with_momentum_is_422_naming_it(client: ApiClient, alice: Caller, mnist: Path) -> None:
    for name in ("adam", "adamw"):
        r = _submit(client, alice, optimizer={"name": name, "lr": 0.001, "momentum": 0.9})
        assert r.status_code == 422 and r.json()["detail"]["field"] == "optimizer.momentum"
        r = _submit(client, alice, optimizer={"name": name, "lr": 0.001})
        assert r.status_code == 201, r.text


def test_architectures_describe_their_options_and_defaults(
    client: ApiClient, alice: Caller
) -> None:
    r = client.get("/v1/architectures", headers=alice.headers)
    archs = {a["name"]: a for a in r.json()}
    assert {"cnn", "cnn_deep", "resnet"} <= set(archs)
    assert archs["cnn_deep"]["options"] == {
        "channels": [64, 128, 256],
        "batch_norm": True,
        "dropout": 0.0,
    }
    assert archs["cnn"]["options"]["channels"] == [16, 32]
    assert set(archs["resnet"]["options"]) == {"depth", "width", "dropout"}
    assert all(a["description"] for a in archs.values())


def test_the_spec_schema_leaves_model_options_to_the_architecture(client: ApiClient) -> None:
    """The dashboard's form is built from this: it must not pre-fill cnn's 16, 32 for every
    architecture."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    model = schemas["ModelSpec"]["properties"]
    for option in ("channels", "batch_norm", "dropout", "depth", "width"):
        assert model[option].get("default") is None, option
    r = client.get("/openapi.json").json()["components"]["schemas"]["TrainSpec"]["properties"]
    assert {"augment", "schedule", "label_smoothing", "early_stopping", "init"} <= set(r)


def test_a_cnn_deep_job_keeps_its_own_defaults(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    r = _submit(client, alice, model={"arch": "cnn_deep"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["model"]["channels"] is None  # the architecture's: 64, 128, 256


def test_metrics_carry_the_learning_rate_and_a_job_says_it_stopped_early(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    job = _submit(client, alice, early_stopping={"patience": 1}).json()["id"]
    with session_scope(db_url) as s:
        lifecycle.claim(s, job, "test-worker")
    for epoch in (1, 2):
        with session_scope(db_url) as s:
            row = metrics(epoch, 0.5) | {"lr": 0.1 / epoch}
            lifecycle.record_epoch(s, job, row, last=b"x", best=b"x" if epoch == 1 else None)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job, JobStatus.succeeded, test_accuracy=0.5, stopped_early_at=2)
    rows = client.get(f"/v1/jobs/{job}/metrics", headers=alice.headers).json()
    assert [r["lr"] for r in rows] == [0.1, 0.05]
    read = client.get(f"/v1/jobs/{job}", headers=alice.headers).json()
    assert read["status"] == "succeeded" and read["stopped_early_at"] == 2


def test_a_versions_view_shows_its_lineage(
    client: ApiClient, alice: Caller, job_id: str, db_url: str, trained: TrainedModel
) -> None:
    client.post("/v1/models", json={"name": "base", "job_id": job_id}, headers=alice.headers)
    tuned = _submit(client, alice, init={"model": "base"}).json()["id"]
    give_model(db_url, tuned, trained)
    client.post("/v1/models", json={"name": "tuned", "job_id": tuned}, headers=alice.headers)
    view = client.get("/v1/models/tuned/versions/1", headers=alice.headers).json()
    assert view["job_id"] == tuned
    assert view["init"]["model"] == "base" and view["init"]["version"] == 1
    assert client.get("/v1/models/base/versions/1", headers=alice.headers).json()["init"] is None
