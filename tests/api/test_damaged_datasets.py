"""A damaged dataset file over HTTP: the dataset listed unavailable with why, submits a 422."""

from __future__ import annotations

import pickle
from pathlib import Path

from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.datasets import write_cifar10, write_mnist


def test_a_cifar10_batch_without_data_is_unavailable_not_a_500(
    client: ApiClient, alice: Caller, data_dir: Path
) -> None:
    write_mnist(data_dir, n_train=60, n_test=10)
    root = write_cifar10(data_dir, n_train=50, n_test=10)
    batch_path = root / "data_batch_1"
    with open(batch_path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    del batch["data"]
    with open(batch_path, "wb") as f:
        pickle.dump(batch, f, protocol=2)

    r = client.get("/v1/datasets", headers=alice.headers)
    assert r.status_code == 200, r.text
    by_name = {d["name"]: d for d in r.json()}
    cifar = by_name["cifar10"]
    assert cifar["available"] is False and cifar["train_size"] is None
    assert cifar["reason"] == "data_batch_1: no 'data' key"
    assert cifar["tried"] == [str(root)]
    assert by_name["mnist"]["available"] is True and by_name["mnist"]["reason"] is None

    r = client.post("/v1/jobs", json={"dataset": "cifar10", "val_size": 10}, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "dataset_unavailable" and detail["field"] == "dataset"
    assert detail["dataset"] == "cifar10" and detail["reason"] == "data_batch_1: no 'data' key"
    # The other dataset is still fine.
    good = {"dataset": "mnist", "val_size": 10, "batch_size": 10}
    r = client.post("/v1/jobs", json=good, headers=alice.headers)
    assert r.status_code == 201, r.text


def test_a_truncated_idx_file_is_unavailable(
    client: ApiClient, alice: Caller, data_dir: Path
) -> None:
    raw = write_mnist(data_dir, n_train=60, n_test=10)
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-5])
    mnist = {d["name"]: d for d in client.get("/v1/datasets", headers=alice.headers).json()}
    assert mnist["mnist"]["available"] is False
    assert mnist["mnist"]["reason"].startswith("train-labels-idx1-ubyte: truncated")
    r = client.post("/v1/jobs", json={"dataset": "mnist"}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset"
