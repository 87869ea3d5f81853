"""``cnnlab search`` (plan, pause, resume, retry, trials) and the client's search methods, run
in-process against the real app over a sync transport."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from cnnlab import client as client_module
from cnnlab.cli import main
from cnnlab.client import ApiError, Client
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

BASE = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 2, "device": "cpu"}
SPACE = {"optimizer.lr": {"loguniform": [0.001, 0.3]}, "batch_size": {"choice": [16, 32]}}


class AppTransport(httpx.BaseTransport):
    """Hands the client's requests to the in-process app (no event streams)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.api.request(
            request.method,
            request.url.raw_path.decode(),
            headers=dict(request.headers),
            content=request.read(),
        )
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-encoding")
        }
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


@pytest.fixture
def remote(client: ApiClient, alice: Caller, mnist: Path) -> Iterator[Client]:
    with Client("http://cnnlab.test", alice.token, transport=AppTransport(client)) as c:
        yield c


@pytest.fixture
def cli(remote: Client, client: ApiClient, alice: Caller, monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(url: str | None, token: str | None, **_: Any) -> Client:
        return Client("http://cnnlab.test", alice.token, transport=AppTransport(client))

    monkeypatch.setattr(client_module, "Client", make)

    def run(*argv: str) -> int:
        return main(list(argv))

    return run


def test_the_client_plans_starts_pauses_resumes_and_reads_trials(remote: Client) -> None:
    plan = remote.plan_search(BASE, space=SPACE, num_trials=3, seed=2)
    assert plan["num_trials"] == 3 and plan["sampler"] == "random"
    search = remote.search(BASE, space=SPACE, num_trials=3, seed=2, max_concurrent_trials=3)
    assert [t["params"] for t in search["trials"]] == [t["params"] for t in plan["trials"]]
    assert search["mode"] == "max" and search["seed"] == 2
    assert remote.pause_search(search["id"])["paused"] is True
    assert remote.resume_search(search["id"])["paused"] is False
    with pytest.raises(ApiError) as info:
        remote.retry_search(search["id"])
    assert info.value.status == 409
    frame = remote.trials_frame(search["id"])
    assert frame.index.tolist() == [0, 1, 2]
    assert frame["job_id"].tolist() == [t["job_id"] for t in search["trials"]]
    assert pd.read_csv(io.StringIO(remote.trials_csv(search["id"]))).shape == (3, 12)


def test_cnnlab_search_plan_start_act_and_trials(
    cli: Any, remote: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "search.json"
    body.write_text(json.dumps({"base": BASE, "space": SPACE, "num_trials": 2, "seed": 1}))

    assert cli("search", "plan", str(body)) == 0
    out = capsys.readouterr().out
    assert "2 trials (random), at most 4 epochs" in out and "speed:" in out
    assert remote.searches() == []

    assert cli("search", str(body)) == 0
    captured = capsys.readouterr()
    search_id = captured.out.strip()
    assert "2 trials (random)" in captured.err and "optimizer.lr" in captured.err

    assert cli("search", "pause", search_id) == 0
    assert "paused" in capsys.readouterr().out
    assert cli("search", "resume", search_id, "--json") == 0
    assert json.loads(capsys.readouterr().out)["paused"] is False
    assert cli("search", "retry", search_id) == 1  # nothing failed: 409, one line
    assert "no failed or cancelled trial" in capsys.readouterr().err

    assert cli("search", "trials", search_id, "--csv") == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == 2 and "optimizer.lr" in frame.columns
    assert cli("search", "trials", search_id) == 0
    assert "VAL_LOSS" in capsys.readouterr().out

    assert cli("search", "cancel", search_id) == 0
    assert "cancel requested" in capsys.readouterr().out


def test_cnnlab_search_refuses_unknown_keys(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "bad.json"
    body.write_text(json.dumps({"base": BASE, "grid": {"seed": [1]}, "colour": "red"}))
    assert cli("search", str(body)) == 2
    assert "unknown keys ['colour']" in capsys.readouterr().err
    assert cli("search", "pause", "a", "b") == 2
    assert "usage:" in capsys.readouterr().err
    assert cli("search", "pause") == 2  # a lone word is a file name
    assert "cannot read pause" in capsys.readouterr().err


class FakeSearchClient:
    """Just enough of a client for ``cnnlab search watch``: a search that runs two trials."""

    def __init__(self) -> None:
        trial = {"job_id": "j0", "index": 0, "params": {"optimizer.lr": 0.1}, "score": None}
        self.trials = [
            {**trial, "status": "queued", "epoch": 0, "val_accuracy": None},
            {**trial, "job_id": "j1", "index": 1, "params": {"optimizer.lr": 0.01}}
            | {"status": "queued", "epoch": 0, "val_accuracy": None},
        ]
        self.search = {
            "id": "s" * 32,
            "status": "queued",
            "grid": {"optimizer.lr": [0.1, 0.01]},
            "space": None,
            "base": {"epochs": 2},
            "num_trials": 2,
            "metric": "val_accuracy",
            "best_job_id": None,
            "test_accuracy": None,
            "trials": self.trials,
        }

    def get_search(self, search_id: str) -> dict[str, Any]:
        return self.search

    def search_events(self, search_id: str) -> Iterator[Any]:
        from cnnlab.client import Event

        yield Event("status", {**self.search, "status": "running"})
        for index, score in ((0, 0.9), (1, 0.7)):
            for epoch, status in ((1, "running"), (2, "succeeded")):
                self.trials[index].update(
                    status=status, epoch=epoch, score=score, val_accuracy=score
                )
                yield Event("trial", dict(self.trials[index]))
        self.search.update(status="succeeded", best_job_id="j0", test_accuracy=0.88)
        yield Event("status", dict(self.search))


def test_cnnlab_search_watch_follows_to_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli.search import _watch_search

    fake: Any = FakeSearchClient()
    assert _watch_search(fake, "s" * 32, as_json=False) == 0
    captured = capsys.readouterr()
    assert "trial 0 running after epoch 1: score 0.9000 (optimizer.lr=0.1)" in captured.err
    assert "trial 1 succeeded after epoch 2" in captured.err
    assert "best trial 0 (job j0), val_accuracy 0.9000, test_accuracy 88.00%" in captured.out

    fake = FakeSearchClient()
    assert _watch_search(fake, "s" * 32, as_json=True) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["status"] + ["trial"] * 4 + ["status"]


def test_the_client_deletes_ended_work_and_says_what_the_account_uses(remote: Client) -> None:
    job = remote.submit(BASE)
    with pytest.raises(ApiError) as err:
        remote.delete(job["id"])  # still queued
    assert err.value.status == 409
    assert remote.me()["active_jobs"]["count"] == 1
    remote.cancel(job["id"])
    remote.delete(job["id"])
    with pytest.raises(ApiError) as err:
        remote.job(job["id"])
    assert err.value.status == 404
    assert remote.me()["active_jobs"]["count"] == 0

    search = remote.search(BASE, {"seed": [1, 2]})
    remote.cancel_search(search["id"])
    remote.delete_search(search["id"])
    with pytest.raises(ApiError) as err:
        remote.get_search(search["id"])
    assert err.value.status == 404
