"""A search body's fields exist once (:class:`~cnnlab.search.config.SearchConfig`): one body that
sets every field, ``register_best_as`` and median's ``startup_trials`` included, is accepted
alike by the CLI (``cnnlab search FILE`` and ``cnnlab search plan FILE``), the Python client, the
server's plan and ``POST /v1/searches``, and each search created keeps every field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cnnlab.client import Client
from cnnlab.search.config import SearchConfig
from tests.api.conftest import Caller
from tests.api.test_search_commands import cli, remote
from tests.utils.api_client import ApiClient

__all__ = ["cli", "remote"]  # the fixtures: the client and the CLI, in-process against the app

FULL: dict[str, Any] = {
    "base": {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 2, "device": "cpu"},
    "space": {
        "optimizer.lr": {"loguniform": [0.001, 0.1]},
        "model.channels": {"choice": [[4], [8]]},
        "seed": {"int": [0, 9], "log": False},
    },
    "sampler": "tpe",
    "num_trials": 3,
    "seed": 5,
    "pruner": {"name": "median", "warmup_epochs": 1, "startup_trials": 2},
    "max_concurrent_trials": 1,
    "metric": "val_loss",
    "mode": "min",
    "register_best_as": {"name": "full-body", "alias": "candidate"},
}


def test_the_full_body_sets_every_field() -> None:
    # All but `grid`, which a body gives instead of `space`.
    assert set(FULL) | {"grid"} == {"base", *SearchConfig.model_fields}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_client_plan_and_api_accept_one_full_body(
    cli: Any,
    remote: Client,
    client: ApiClient,
    alice: Caller,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "full.json"
    path.write_text(json.dumps(FULL))
    assert cli("search", "plan", str(path), "--json") == 0
    by_cli_plan = json.loads(capsys.readouterr().out)
    by_client_plan = remote.plan_search(**FULL)
    by_api_plan = client.post("/v1/searches/plan", json=FULL, headers=alice.headers)
    assert by_api_plan.status_code == 200, by_api_plan.text
    for plan in (by_cli_plan, by_client_plan, by_api_plan.json()):
        assert (plan["sampler"], plan["num_trials"], plan["mode"]) == ("tpe", 3, "min")
        assert plan["pruner"] == FULL["pruner"]

    assert cli("search", str(path), "--json") == 0
    by_cli = json.loads(capsys.readouterr().out)
    by_client = remote.search(**FULL)
    by_config = remote.search(FULL["base"], config=SearchConfig.parse(FULL))
    by_api = client.post("/v1/searches", json=FULL, headers=alice.headers)
    assert by_api.status_code == 201, by_api.text
    for created in (by_cli, by_client, by_config, by_api.json()):
        search = remote.get_search(created["id"])
        for field in set(FULL) - {"base"}:
            assert search[field] == FULL[field], field
        assert search["grid"] == {}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pruner": {"name": "hyperband"}}, "pruner.name"),
        ({"pruner": {"name": "median", "startup_trials": 0}}, "pruner.startup_trials"),
        ({"space": {"optimizer.lr": {"loguniform": "wide"}}}, "space.optimizer.lr"),
        ({"register_best_as": {"name": 7}}, "register_best_as.name"),
        ({"max_concurrent_trials": 0}, "max_concurrent_trials"),
    ],
)
def test_a_bad_field_is_invalid_spec_naming_it(
    client: ApiClient, alice: Caller, change: dict[str, Any], field: str
) -> None:
    # The typed body refuses these before the search core sees them, with the core's error type.
    r = client.post("/v1/searches", json={**FULL, **change}, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert (r.json()["detail"]["type"], r.json()["detail"]["field"]) == ("invalid_spec", field)
