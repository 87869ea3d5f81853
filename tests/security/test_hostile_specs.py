"""Careless and hostile specs over HTTP: every one is a 422 naming the field, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

BASE: dict[str, Any] = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}

# (changes to BASE, the field the 422 must name). The tiny dataset has 300 training images.
BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"epochs": 0}, "epochs"),
    ({"epochs": 10**6}, "epochs"),
    ({"epochs": 1e100}, "epochs"),
    ({"epochs": "many"}, "epochs"),
    ({"epochs": None}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 100_000}, "batch_size"),
    ({"batch_size": 251}, "batch_size"),  # more than the 250 images left after validation
    ({"train_size": 0}, "train_size"),
    ({"train_size": 10**30}, "train_size"),
    ({"val_size": 0}, "val_size"),
    ({"val_size": -5}, "val_size"),
    ({"val_size": 300}, "val_size"),
    ({"val_size": 1.0}, "val_size"),
    ({"val_size": "half"}, "val_size"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"device": "tpu"}, "device"),
    ({"dataset": "imagenet"}, "dataset"),
    ({"dataset": None}, "dataset"),
    ({"dataset": ["mnist"]}, "dataset"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr"),
    ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
    ({"optimizer": {"lr": 1e308}}, "optimizer.lr"),
    ({"optimizer": {"momentum": 1.0}}, "optimizer.momentum"),
    ({"optimizer": {"weight_decay": -1}}, "optimizer.weight_decay"),
    ({"optimizer": {"name": "lbfgs"}}, "optimizer.name"),
    ({"optimizer": {"name": "adam", "nesterov": True}}, "optimizer"),
    ({"optimizer": {"name": "adam", "nesterov": True, "momentum": 0.9}}, "optimizer.momentum"),
    ({"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}}, "optimizer.betas"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"model": {"dropout": 1.0}}, "model.dropout"),
    ({"model": {"dropout": -0.5}}, "model.dropout"),
    ({"model": {"channels": []}}, "model.channels"),
    ({"model": {"channels": [0]}}, "model.channels.0"),
    ({"model": {"channels": [16, 5000]}}, "model.channels.1"),
    ({"model": {"channels": [8] * 9}}, "model.channels"),
    ({"model": {"channels": [8] * 8}}, "model"),  # pools 28×28 down to nothing
    ({"model": {"channels": "16,32"}}, "model.channels"),
    ({"model": {"arch": "resnet152"}}, "model.arch"),
    ({"model": {"kernel": 3}}, "model.kernel"),
    ({"model": None}, "model"),
    ({"learning_rate": 0.1}, "learning_rate"),
    ({"model": {"depth": 2}}, "model.depth"),  # cnn has no depth
    ({"augment": {"crop": 99}}, "augment.crop"),
    ({"augment": {"flip": "yes"}}, "augment.flip"),
    ({"schedule": {"name": "linear"}}, "schedule.name"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"class_weight": "inverse"}, "class_weight"),
    ({"early_stopping": {"patience": 0}}, "early_stopping.patience"),
    ({"init": {"model": "m", "job_id": "j"}}, "init"),
    ({"freeze": "features"}, "freeze_epochs"),
    ({"precision": "fp16"}, "precision"),
]


@pytest.mark.parametrize(("change", "field"), BAD_SPECS, ids=[f for _, f in BAD_SPECS])
def test_a_bad_spec_is_422_naming_the_field(
    client: ApiClient, alice: Caller, mnist: Path, change: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/jobs", json={**BASE, **change}, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field, detail
    assert detail["type"] in ("invalid_request", "invalid_spec")
    # As a search's base, the same mistake names base.<field>.
    body = {"base": {**BASE, **change}, "grid": {"seed": [1, 2]}}
    r = client.post("/v1/searches", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == f"base.{field}"
    assert client.get("/v1/jobs", headers=alice.headers).json()["items"] == []


BAD_GRIDS: list[tuple[Any, str]] = [
    ({}, "grid"),
    ({"optimizer.lr": []}, "grid.optimizer.lr"),
    ({"optimizer.lr": 0.1}, "grid.optimizer.lr"),
    ({"optimizer.lr": [0.1, -1]}, "grid.optimizer.lr"),
    ({"optimizer.lr": [0.1] * 17}, "grid.optimizer.lr"),  # values per path
    ({"seed": list(range(16)), "optimizer.lr": [0.1, 0.2, 0.3, 0.4, 0.5]}, "grid"),  # 80 > 64
    ({"optimizer": [{"lr": 0.1}]}, "grid.optimizer"),
    ({"optimizer.lr.x": [1]}, "grid.optimizer.lr.x"),
    ({"no_such": [1]}, "grid.no_such"),
    ({"batch_size": [32, 100_000]}, "grid.batch_size"),
    ({"batch_size": [32, 251]}, "grid.batch_size"),
    ([["optimizer.lr", [0.1]]], "grid"),
]


@pytest.mark.parametrize(("grid", "field"), BAD_GRIDS, ids=[f for _, f in BAD_GRIDS])
def test_a_bad_grid_is_422_naming_the_path(
    client: ApiClient, alice: Caller, mnist: Path, grid: Any, field: str
) -> None:
    r = client.post("/v1/searches", json={"base": BASE, "grid": grid}, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == field
    assert client.get("/v1/jobs", headers=alice.headers).json()["items"] == []


RAW_BODIES = [
    ("not json", b'{"dataset": '),
    ("not utf-8", b"\xff\xfe\x00"),
    ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("a 5000-digit integer", b'{"dataset": "mnist", "epochs": 1' + b"0" * 5000 + b"}"),
    ("NaN", b'{"dataset": "mnist", "optimizer": {"lr": NaN}}'),
    ("Infinity", b'{"dataset": "mnist", "model": {"dropout": Infinity}}'),
    ("1e400", b'{"dataset": "mnist", "epochs": 1e400}'),
    ("a list", b'[{"dataset": "mnist"}]'),
    ("null", b"null"),
]


@pytest.mark.parametrize("body", [b for _, b in RAW_BODIES], ids=[n for n, _ in RAW_BODIES])
def test_unreadable_or_strange_json_is_422(
    client: ApiClient, alice: Caller, mnist: Path, body: bytes
) -> None:
    headers = {**alice.headers, "content-type": "application/json"}
    for url in ("/v1/jobs", "/v1/searches"):
        r = client.post(url, content=body, headers=headers)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["detail"]["type"] == "invalid_request"


def test_an_oversized_body_is_413_before_it_is_parsed(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    huge = b'{"dataset": "' + b"x" * 300_000 + b'"}'
    headers = {**alice.headers, "content-type": "application/json"}
    r = client.post("/v1/jobs", content=huge, headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["limit_name"] == "request"

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    r = client.post("/v1/searches", content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["type"] == "payload_too_large"


# Any JSON value at all, in any spec field: a 201 or a 422, never anything else. (NaN and
# Infinity are not JSON, so the client cannot send them: the raw-body cases above do.)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_fields = st.sampled_from(
    ["epochs", "batch_size", "train_size", "val_size", "seed", "device", "model", "optimizer"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(_fields, _json, max_size=3))
def test_any_json_in_any_spec_field_is_201_or_422(
    client: ApiClient, alice: Caller, mnist: Path, changes: dict[str, Any]
) -> None:
    r = client.post("/v1/jobs", json={**BASE, **changes}, headers=alice.headers)
    assert r.status_code in (201, 422), (changes, r.text)
    if r.status_code == 422:
        assert r.json()["detail"]["field"]
    else:
        client.post(f"/v1/jobs/{r.json()['id']}/cancel", headers=alice.headers)
