"""What this server can train, and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient


def test_datasets_say_what_is_here(
    client: ApiClient, alice: Caller, mnist: Path, data_dir: Path
) -> None:
    r = client.get("/v1/datasets", headers=alice.headers)
    assert r.status_code == 200
    by_name = {d["name"]: d for d in r.json()}
    assert set(by_name) == {"mnist", "fashion_mnist", "cifar10"}
    mnist_info = by_name["mnist"]
    assert mnist_info["available"] is True and mnist_info["shape"] == [1, 28, 28]
    assert (mnist_info["train_size"], mnist_info["test_size"]) == (300, 50)
    cifar = by_name["cifar10"]
    assert cifar["available"] is False and cifar["train_size"] is None
    assert str(data_dir / "cifar-10-batches-py") in cifar["tried"]
    assert len(cifar["class_names"]) == 10


def test_architectures_lists_the_registry(client: ApiClient, alice: Caller) -> None:
    from cnnlab.architectures.registry import list_architectures

    r = client.get("/v1/architectures", headers=alice.headers)
    assert r.status_code == 200 and [m["name"] for m in r.json()] == list_architectures()
    assert "cnn" in list_architectures()
    # /v1/models is the model registry now: the caller's models, none yet.
    r = client.get("/v1/models", headers=alice.headers)
    assert r.status_code == 200 and r.json() == {"items": [], "next": None}


def test_openapi_documents_both_prediction_bodies(client: ApiClient) -> None:
    doc = client.get("/openapi.json").json()
    predict = doc["paths"]["/v1/jobs/{job_id}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"404", "409", "413", "422"} <= set(predict["responses"])
    assert "bearer" in str(doc["components"]["securitySchemes"]).lower()
