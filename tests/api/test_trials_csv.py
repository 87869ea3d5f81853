"""GET /v1/searches/{id}/trials.csv: one row per trial, read by pandas as it comes."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.factories import metrics

BASE = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 3}
GRID = {"optimizer.lr": [0.01, 0.1], "model.channels": [[8], [8, 16]]}


def run(db_url: str, job_id: str, accuracies: list[float]) -> None:
    """Claim the trial and record one epoch per accuracy (loss falling as accuracy rises)."""
    with session_scope(db_url) as s:
        lifecycle.claim(s, job_id, "w")
    for epoch, acc in enumerate(accuracies, start=1):
        with session_scope(db_url) as s:
            row = {**metrics(epoch, acc, val_loss=round(1 - acc, 4)), "seconds": 2.0 + epoch}
            lifecycle.record_epoch(s, job_id, row, last=b"l", best=b"b")


def frame(client: ApiClient, caller: Caller, search_id: str) -> pd.DataFrame:
    r = client.get(f"/v1/searches/{search_id}/trials.csv", headers=caller.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return pd.read_csv(io.StringIO(r.text))


def test_one_row_per_trial_with_its_params_and_metrics(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    body: dict[str, Any] = {"base": BASE, "grid": GRID, "max_concurrent_trials": 4}
    search = client.post("/v1/searches", json=body, headers=alice.headers).json()
    ids = [t["job_id"] for t in search["trials"]]
    run(db_url, ids[0], [0.5, 0.7, 0.6])
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, ids[0], JobStatus.succeeded, test_accuracy=0.68)
    run(db_url, ids[1], [0.3])
    pruned = {"type": "pruned", "rule": "asha", "epoch": 1, "value": 0.3, "threshold": 0.5}
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, ids[1], JobStatus.pruned, error={**pruned, "message": "slow"})
    run(db_url, ids[2], [0.4])  # still running

    df = frame(client, alice, search["id"])
    params = ["optimizer.lr", "model.channels"]
    ended = ["test_accuracy", "seconds", "pruned_epoch", "error_type"]
    during = ["status", "epoch", "val_accuracy", "val_loss"]
    assert list(df.columns) == ["trial", "job_id", *params, *during, *ended]
    assert df["trial"].tolist() == [0, 1, 2, 3] and df["job_id"].tolist() == ids
    assert df["optimizer.lr"].tolist() == [0.01, 0.01, 0.1, 0.1]
    assert df["model.channels"].tolist() == ["[8]", "[8, 16]", "[8]", "[8, 16]"]  # as JSON
    assert df["status"].tolist() == ["succeeded", "pruned", "running", "queued"]
    assert df["epoch"].tolist() == [3, 1, 1, 0]
    assert df["val_accuracy"].tolist()[:3] == [0.7, 0.3, 0.4]
    assert df["val_loss"].tolist()[:3] == pytest.approx([0.3, 0.7, 0.6])
    assert df["seconds"].tolist()[:3] == [3.0 + 4.0 + 5.0, 3.0, 3.0]
    assert df["test_accuracy"].tolist()[0] == 0.68
    assert df["pruned_epoch"].tolist()[1] == 1
    assert df["error_type"].tolist()[1] == "pruned"
    # Empty cells are missing values, not strings.
    last = df.iloc[3]
    for column in ("val_accuracy", "val_loss", "test_accuracy", "pruned_epoch", "error_type"):
        assert isinstance(last[column], float) and math.isnan(last[column]), column
    assert df["seconds"].iloc[3] == 0

    # The search object's trials carry the same figures.
    read = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    first, second = read["trials"][:2]
    assert first["epoch"] == 3 and first["val_loss"] == pytest.approx(0.3)
    assert first["seconds"] == 12.0 and first["test_accuracy"] == 0.68
    assert second["error_type"] == "pruned" and second["pruned_epoch"] == 1


def test_a_sampled_search_has_a_column_per_space_path(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    space = {"optimizer.lr": {"loguniform": [0.001, 0.1]}, "batch_size": {"choice": [16, 32]}}
    body = {"base": BASE, "space": space, "num_trials": 3, "max_concurrent_trials": 3}
    search = client.post("/v1/searches", json=body, headers=alice.headers).json()
    df = frame(client, alice, search["id"])
    assert len(df) == 3 and {"optimizer.lr", "batch_size"} <= set(df.columns)
    assert df["optimizer.lr"].between(0.001, 0.1).all()
    assert df["optimizer.lr"].tolist() == [t["params"]["optimizer.lr"] for t in search["trials"]]


def test_someone_elses_csv_is_404(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    search = client.post(
        "/v1/searches", json={"base": BASE, "grid": GRID}, headers=alice.headers
    ).json()
    r = client.get(f"/v1/searches/{search['id']}/trials.csv", headers=bob.headers)
    assert r.status_code == 404
