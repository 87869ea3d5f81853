"""The model registry over HTTP: versions, aliases, predictions by name, exports, per user."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from api.exports import export_service
from api.main import create_app
from api.settings import ApiSettings
from cnnlab.engine.checkpoints import dumps, loads
from cnnlab.engine.predict import Predictor
from tests.api.conftest import MODEL_JOB_SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient
from tests.utils.datasets import patterned_images
from tests.utils.exports import assert_parity, run_onnx, run_torchscript
from tests.utils.serving import serve


@pytest.fixture(scope="session")
def other_checkpoint(trained: TrainedModel) -> bytes:
    """The trained checkpoint with different weights: a later, different model."""
    ckpt = loads(trained.checkpoint)
    torch.manual_seed(1)
    ckpt["model_state"] = {
        k: v + 0.5 * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in ckpt["model_state"].items()
    }
    ckpt["epoch"] = 2
    return dumps(ckpt)


def _record_epoch(db_url: str, job_id: str, epoch: int, data: bytes) -> None:
    from cnnlab import lifecycle
    from cnnlab.store.db import session_scope
    from tests.utils.factories import metrics

    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(epoch, 0.9, val_loss=0.1), last=data, best=data)


def _images(n: int, seed: int = 7) -> np.ndarray:
    return patterned_images(n, (28, 28), seed)[0]


def _register(
    client: ApiClient, caller: Caller, job: str, name: str = "fashion", **body: Any
) -> dict[str, Any]:
    r = client.post(
        "/v1/models", json={"name": name, "job_id": job, **body}, headers=caller.headers
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _predict(client: ApiClient, caller: Caller, name: str, **params: Any) -> dict[str, Any]:
    body = {"instances": _images(3).tolist()}
    r = client.post(f"/v1/models/{name}/predict", json=body, params=params, headers=caller.headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# -- registering -----------------------------------------------------------------------------
def test_register_numbers_versions_and_describes_them(
    client: ApiClient, alice: Caller, job_id: str, trained: TrainedModel
) -> None:
    v1 = _register(client, alice, job_id, description="first try")
    assert v1["version"] == 1 and v1["name"] == "fashion"
    assert v1["job_id"] == job_id and v1["search_id"] is None
    assert (v1["checkpoint"], v1["epoch"], v1["dataset"], v1["arch"]) == ("best", 1, "mnist", "cnn")
    assert v1["val_accuracy"] == pytest.approx(0.6) and v1["test_accuracy"] is None
    assert v1["description"] == "first try" and v1["aliases"] == []
    assert v1["size_bytes"] == len(trained.checkpoint)
    v2 = _register(client, alice, job_id, checkpoint="last")
    assert (v2["version"], v2["checkpoint"]) == (2, "last")

    model = client.get("/v1/models/fashion", headers=alice.headers).json()
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["latest_version"] == 2 and model["version_count"] == 2
    assert model["aliases"] == {}
    one = client.get("/v1/models/fashion/versions/1", headers=alice.headers)
    assert one.status_code == 200 and one.json() == v1


@pytest.fixture
def trained_on(
    client: ApiClient, alice: Caller, job_id: str, db_url: str, other_checkpoint: bytes
) -> str:
    """Alice's job registered as version 1 of "fashion", then trained on to epoch 2 with other
    weights; its id."""
    _register(client, alice, job_id)
    _record_epoch(db_url, job_id, 2, other_checkpoint)
    return job_id


def test_a_version_is_frozen(
    client: ApiClient, alice: Caller, trained_on: str, trained: TrainedModel
) -> None:
    job_id = trained_on  # the job trained on after its registration
    core = Predictor(loads(trained.checkpoint))
    answer = _predict(client, alice, "fashion", version=1)
    assert answer["predictions"] == core.predict_arrays(list(_images(3)))
    assert answer["epoch"] == 1
    # A new registration takes the job's new best.
    v2 = _register(client, alice, job_id)
    assert v2["epoch"] == 2 and v2["val_accuracy"] == pytest.approx(0.9)


def test_a_job_without_a_model_is_409(client: ApiClient, alice: Caller, mnist: Path) -> None:
    job = client.post("/v1/jobs", json=MODEL_JOB_SPEC, headers=alice.headers).json()
    r = client.post(
        "/v1/models", json={"name": "early", "job_id": job["id"]}, headers=alice.headers
    )
    assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"
    # Nothing was created on the way.
    assert client.get("/v1/models/early", headers=alice.headers).status_code == 404


@pytest.mark.parametrize("name", ["Fashion", "-x", ".x", "a" * 64, "a b", "", "é", "a/b"])
def test_a_bad_name_is_422(client: ApiClient, alice: Caller, job_id: str, name: str) -> None:
    r = client.post("/v1/models", json={"name": name, "job_id": job_id}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "name", r.text


@pytest.mark.parametrize("name", ["a", "0", "fashion-mnist_v2.1", "a" * 63])
def test_good_names(client: ApiClient, alice: Caller, job_id: str, name: str) -> None:
    assert _register(client, alice, job_id, name=name)["name"] == name
    assert client.get(f"/v1/models/{name}", headers=alice.headers).status_code == 200


def test_bad_bodies_are_422(client: ApiClient, alice: Caller, job_id: str) -> None:
    for body in (
        {"name": "m", "job_id": job_id, "checkpoint": "middle"},
        {"name": "m", "job_id": job_id, "extra": 1},
        {"name": "m", "job_id": job_id, "description": "x" * 1001},
        {"name": "m"},
    ):
        r = client.post("/v1/models", json=body, headers=alice.headers)
        assert r.status_code == 422, (body, r.text)


# -- listing ---------------------------------------------------------------------------------
def test_models_are_listed_newest_first_in_pages(
    client: ApiClient, alice: Caller, job_id: str
) -> None:
    for name in ("m1", "m2", "m3"):
        _register(client, alice, job_id, name=name)
    _register(client, alice, job_id, name="m1")
    client.request(
        "PUT", "/v1/models/m1/aliases/production", json={"version": 1}, headers=alice.headers
    )
    first = client.get("/v1/models", params={"limit": 2}, headers=alice.headers).json()
    assert [m["name"] for m in first["items"]] == ["m3", "m2"] and first["next"]
    rest = client.get(
        "/v1/models", params={"limit": 2, "cursor": first["next"]}, headers=alice.headers
    ).json()
    assert [m["name"] for m in rest["items"]] == ["m1"] and rest["next"] is None
    (m1,) = rest["items"]
    assert (m1["latest_version"], m1["version_count"], m1["aliases"]) == (2, 2, {"production": 1})


# -- aliases and predictions by name ---------------------------------------------------------
def test_predictions_follow_the_alias_at_once(
    client: ApiClient,
    alice: Caller,
    trained_on: str,
    trained: TrainedModel,
    other_checkpoint: bytes,
) -> None:
    job_id = trained_on
    _register(client, alice, job_id)
    images = list(_images(3))
    first = Predictor(loads(trained.checkpoint)).predict_arrays(images)
    second = Predictor(loads(other_checkpoint)).predict_arrays(images)
    assert first != second

    # No production alias: the newest version.
    answer = _predict(client, alice, "fashion")
    assert (answer["version"], answer["alias"], answer["predictions"]) == (2, None, second)
    assert answer["name"] == "fashion" and answer["job_id"] == job_id

    r = client.request(
        "PUT", "/v1/models/fashion/aliases/production", json={"version": 1}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "fashion",
        "alias": "production",
        "version": 1,
        "previous_version": None,
    }
    answer = _predict(client, alice, "fashion")
    assert (answer["version"], answer["alias"], answer["predictions"]) == (1, "production", first)

    # Moving production is one request; the very next prediction uses the new version.
    r = client.request(
        "PUT", "/v1/models/fashion/aliases/production", json={"version": 2}, headers=alice.headers
    )
    assert r.json()["previous_version"] == 1
    answer = _predict(client, alice, "fashion")
    assert (answer["version"], answer["predictions"]) == (2, second)

    # By number, and by another alias.
    assert _predict(client, alice, "fashion", version=1)["predictions"] == first
    client.request(
        "PUT", "/v1/models/fashion/aliases/candidate", json={"version": 1}, headers=alice.headers
    )
    answer = _predict(client, alice, "fashion", alias="candidate")
    assert (answer["version"], answer["alias"]) == (1, "candidate")
    model = client.get("/v1/models/fashion", headers=alice.headers).json()
    assert model["aliases"] == {"candidate": 1, "production": 2}
    assert [v["aliases"] for v in model["versions"]] == [["production"], ["candidate"]]

    # Removing production: the newest again.
    r = client.request("DELETE", "/v1/models/fashion/aliases/production", headers=alice.headers)
    assert r.status_code == 204
    assert _predict(client, alice, "fashion")["alias"] is None


def test_prediction_files_match_the_jobs(
    client: ApiClient, alice: Caller, job_id: str, trained: TrainedModel
) -> None:
    from PIL import Image

    _register(client, alice, job_id)
    blobs = []
    for array in _images(4, seed=3):
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    files = [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(blobs)]
    by_name = client.post("/v1/models/fashion/predict", files=files, headers=alice.headers)
    by_job = client.post(f"/v1/jobs/{job_id}/predict", files=files, headers=alice.headers)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["predictions"] == by_job.json()["predictions"]
    assert by_name.json()["predictions"] == Predictor(loads(trained.checkpoint)).predict_images(
        blobs
    )


def test_prediction_errors(client: ApiClient, alice: Caller, job_id: str) -> None:
    _register(client, alice, job_id)
    body = {"instances": _images(1).tolist()}

    def predict(name: str = "fashion", **params: Any) -> Any:
        return client.post(
            f"/v1/models/{name}/predict", json=body, params=params, headers=alice.headers
        )

    assert predict("nothing").status_code == 404
    assert predict(alias="nowhere").status_code == 404
    assert predict(version=9).status_code == 404
    both = predict(alias="production", version=1)
    assert both.status_code == 422 and both.json()["detail"]["field"] == "alias"
    bad = client.post(
        "/v1/models/fashion/predict", json={"instances": [[[1, 2]]]}, headers=alice.headers
    )
    assert bad.status_code == 422 and bad.json()["detail"]["item"] == 0


def test_alias_errors(client: ApiClient, alice: Caller, job_id: str) -> None:
    _register(client, alice, job_id)

    def put(alias: str, body: Any, name: str = "fashion") -> Any:
        return client.request(
            "PUT", f"/v1/models/{name}/aliases/{alias}", json=body, headers=alice.headers
        )

    assert put("production", {"version": 5}).status_code == 404
    assert put("production", {"version": 1}, name="nothing").status_code == 404
    assert put("production", {"version": 0}).status_code == 422
    assert put("production", {"version": 1, "x": 1}).status_code == 422
    for bad in ("Prod", "3", "-x"):
        r = put(bad, {"version": 1})
        assert r.status_code == 422 and r.json()["detail"]["field"] == "alias", bad
    r = client.request("DELETE", "/v1/models/fashion/aliases/nope", headers=alice.headers)
    assert r.status_code == 404


# -- deleting --------------------------------------------------------------------------------
def test_a_version_an_alias_points_at_cannot_be_deleted(
    client: ApiClient, alice: Caller, job_id: str
) -> None:
    _register(client, alice, job_id)
    _register(client, alice, job_id)
    client.request(
        "PUT", "/v1/models/fashion/aliases/production", json={"version": 2}, headers=alice.headers
    )
    r = client.request("DELETE", "/v1/models/fashion/versions/2", headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["aliases"] == ["production"]
    assert (
        client.request("DELETE", "/v1/models/fashion/versions/1", headers=alice.headers).status_code
        == 204
    )
    assert client.get("/v1/models/fashion/versions/1", headers=alice.headers).status_code == 404
    assert (
        client.request("DELETE", "/v1/models/fashion/versions/1", headers=alice.headers).status_code
        == 404
    )
    client.request("DELETE", "/v1/models/fashion/aliases/production", headers=alice.headers)
    assert (
        client.request("DELETE", "/v1/models/fashion/versions/2", headers=alice.headers).status_code
        == 204
    )
    # Numbers are not given twice: the next version is 3, not 1.
    assert _register(client, alice, job_id)["version"] == 3


def test_a_model_with_no_versions_left(client: ApiClient, alice: Caller, job_id: str) -> None:
    _register(client, alice, job_id)
    client.request("DELETE", "/v1/models/fashion/versions/1", headers=alice.headers)
    model = client.get("/v1/models/fashion", headers=alice.headers).json()
    assert (model["latest_version"], model["version_count"], model["versions"]) == (None, 0, [])
    r = client.post(
        "/v1/models/fashion/predict",
        json={"instances": _images(1).tolist()},
        headers=alice.headers,
    )
    assert r.status_code == 409
    assert client.request("DELETE", "/v1/models/fashion", headers=alice.headers).status_code == 204
    assert client.get("/v1/models/fashion", headers=alice.headers).status_code == 404
    assert _register(client, alice, job_id)["version"] == 1


# -- per user --------------------------------------------------------------------------------
def test_another_users_model_is_404_like_a_missing_one(
    client: ApiClient,
    alice: Caller,
    bob: Caller,
    job_id: str,
    db_url: str,
    trained: TrainedModel,
) -> None:
    _register(client, alice, job_id)
    client.request(
        "PUT", "/v1/models/fashion/aliases/production", json={"version": 1}, headers=alice.headers
    )
    body = {"instances": _images(1).tolist()}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/models/{name}", {}),
        ("DELETE", "/v1/models/{name}", {}),
        ("GET", "/v1/models/{name}/versions/1", {}),
        ("DELETE", "/v1/models/{name}/versions/1", {}),
        ("PUT", "/v1/models/{name}/aliases/production", {"json": {"version": 1}}),
        ("DELETE", "/v1/models/{name}/aliases/production", {}),
        ("POST", "/v1/models/{name}/predict", {"json": body}),
        ("GET", "/v1/models/{name}/versions/1/export", {"params": {"format": "onnx"}}),
        ("GET", "/v1/models/{name}/versions/1/export/metadata", {}),
    ]
    for method, path, kwargs in requests:
        theirs = client.request(method, path.format(name="fashion"), headers=bob.headers, **kwargs)
        missing = client.request(method, path.format(name="nothing"), headers=bob.headers, **kwargs)
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json()["detail"]["type"] == missing.json()["detail"]["type"]
    # Bob cannot register Alice's job either.
    r = client.post("/v1/models", json={"name": "x", "job_id": job_id}, headers=bob.headers)
    assert r.status_code == 404
    assert client.get("/v1/models", headers=bob.headers).json()["items"] == []
    # Both may have a model called fashion.
    bobs_job = client.post("/v1/jobs", json=MODEL_JOB_SPEC, headers=bob.headers).json()["id"]
    give_model(db_url, bobs_job, trained)
    assert _register(client, bob, bobs_job)["version"] == 1
    assert client.get("/v1/models/fashion", headers=alice.headers).json()["aliases"] == {
        "production": 1
    }
    assert client.get("/v1/models/fashion", headers=bob.headers).json()["aliases"] == {}


# -- exports ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exports_answer_as_the_model_does(
    client: ApiClient, alice: Caller, job_id: str, fmt: str
) -> None:
    _register(client, alice, job_id)
    r = client.get(
        "/v1/models/fashion/versions/1/export", params={"format": fmt}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    assert f'filename="fashion-v1{suffix}"' in r.headers["content-disposition"]
    assert r.headers["x-cnnlab-input-shape"] == "1,28,28"
    assert r.headers["x-cnnlab-version"] == "1"
    assert len(json.loads(r.headers["x-cnnlab-class-names"])) == 10
    images = _images(8, seed=21)
    served = _predict_arrays(client, alice, images)
    run = run_onnx if fmt == "onnx" else run_torchscript
    assert_parity(run(r.content, images), served)

    meta = client.get("/v1/models/fashion/versions/1/export/metadata", headers=alice.headers)
    assert meta.status_code == 200
    assert meta.json()["input_shape"] == [1, 28, 28] and meta.json()["version"] == 1
    assert meta.json()["mean"] == [float(v) for v in r.headers["x-cnnlab-mean"].split(",")]


def _predict_arrays(client: ApiClient, caller: Caller, images: np.ndarray) -> np.ndarray:
    r = client.post(
        "/v1/models/fashion/predict", json={"instances": images.tolist()}, headers=caller.headers
    )
    return np.array([p["probabilities"] for p in r.json()["predictions"]])


def test_export_errors(client: ApiClient, alice: Caller, job_id: str) -> None:
    _register(client, alice, job_id)
    url = "/v1/models/fashion/versions/{v}/export"
    r = client.get(url.format(v=1), params={"format": "pickle"}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "format"
    assert client.get(url.format(v=1), headers=alice.headers).status_code == 422
    r = client.get(url.format(v=2), params={"format": "onnx"}, headers=alice.headers)
    assert r.status_code == 404


def test_an_export_is_made_once_per_version_and_format(
    client: ApiClient, alice: Caller, bob: Caller, job_id: str, other_checkpoint: bytes, db_url: str
) -> None:
    # Before: every request converted the model again under one process-wide lock (42 at once
    # of a 7.9k-parameter model: the last answered after 39 s).
    _register(client, alice, job_id)
    url = "/v1/models/fashion/versions/1/export"
    first = client.get(url, params={"format": "onnx"}, headers=alice.headers)
    cache = export_service(client.app).cache
    assert (cache.hits, len(cache)) == (0, 1)
    again = client.get(url, params={"format": "onnx"}, headers=alice.headers)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["x-cnnlab-version"] == "1" and cache.hits == 1
    assert client.get(url, params={"format": "torchscript"}, headers=alice.headers).is_success
    assert len(cache) == 2
    # A version deleted and made again from other weights is another version: not the cache's.
    assert client.request(
        "DELETE", "/v1/models/fashion/versions/1", headers=alice.headers
    ).is_success
    _record_epoch(db_url, job_id, 2, other_checkpoint)
    number = _register(client, alice, job_id)["version"]
    newer = client.get(
        f"/v1/models/fashion/versions/{number}/export",
        params={"format": "onnx"},
        headers=alice.headers,
    )
    assert newer.status_code == 200 and newer.content != first.content and len(cache) == 3
    # Another user's request for the same name is theirs: 404, nothing from the cache.
    assert client.get(url, params={"format": "onnx"}, headers=bob.headers).status_code == 404


def test_exports_past_the_process_limit_are_503_with_retry_after(
    db_url: str, alice: Caller, job_id: str
) -> None:
    app = create_app(api_settings=ApiSettings(max_concurrent_exports=1))
    with ApiClient(app) as client:
        _register(client, alice, job_id)
        url = "/v1/models/fashion/versions/1/export"
        assert client.get(url, params={"format": "onnx"}, headers=alice.headers).is_success
        service = export_service(app)
        assert service.slots.acquire(blocking=False)  # an export in progress
        try:
            r = client.get(url, params={"format": "torchscript"}, headers=alice.headers)
            assert r.status_code == 503, r.text
            assert r.json()["detail"]["type"] == "overloaded" and r.headers["retry-after"] == "1"
            # What was made already is still served.
            assert client.get(url, params={"format": "onnx"}, headers=alice.headers).is_success
        finally:
            service.slots.release()
        assert client.get(url, params={"format": "torchscript"}, headers=alice.headers).is_success


def test_openapi_documents_the_registry(client: ApiClient) -> None:
    doc = client.get("/openapi.json").json()
    predict = doc["paths"]["/v1/models/{name}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"post", "get"} <= set(doc["paths"]["/v1/models"])
    assert "/v1/architectures" in doc["paths"]
    assert "/v1/models/{name}/versions/{version}/export" in doc["paths"]


# -- the command line ------------------------------------------------------------------------
@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    """The app on a real loopback port (the CLI makes real HTTP requests); its URL."""
    with serve(create_app()) as url:
        yield url


def test_cli_export(
    client: ApiClient,
    alice: Caller,
    job_id: str,
    served: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cnnlab.cli import main

    _register(client, alice, job_id)
    _register(client, alice, job_id, checkpoint="last")
    client.request(
        "PUT", "/v1/models/fashion/aliases/production", json={"version": 1}, headers=alice.headers
    )
    auth = ["--url", served, "--token", alice.token]
    out = tmp_path / "model.onnx"
    assert main(["export", "fashion@production", "--format", "onnx", "-o", str(out), *auth]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    images = _images(4)
    served_probs = _predict_arrays(client, alice, images)
    assert_parity(run_onnx(out.read_bytes(), images), served_probs)

    # NAME alone: production's version; NAME@N: that version; the default file name says which.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        assert main(["export", "fashion", "--format", "torchscript", *auth]) == 0
        assert (tmp_path / "fashion-v1.pt").is_file()
        assert main(["export", "fashion@2", *auth]) == 0
        assert (tmp_path / "fashion-v2.onnx").is_file()
    capsys.readouterr()
    assert main(["export", "fashion@nowhere", *auth]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert main(["export", "nothing", *auth]) == 1
    assert main(["export", "fashion@", *auth]) == 2
