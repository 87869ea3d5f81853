"""``GET /v1/jobs/{id}/events``: server-sent events per status change and per finished epoch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.routes.events import Position, Snapshot, frames
from cnnlab.client import ApiError, Client, Event
from cnnlab.testing.stack import Stack, create_token
from tests.utils.service import TINY_MNIST_SPEC


def _job(status: str, epoch: int = 0, epochs: int = 3) -> dict[str, Any]:
    return {"id": "j", "status": status, "epoch": epoch, "spec": {"epochs": epochs}}


def _row(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 1}


def _parse(frame: str) -> dict[str, str]:
    fields = dict(line.split(": ", 1) for line in frame.strip().splitlines())
    return fields


def test_a_new_status_comes_before_the_epochs_that_follow_it() -> None:
    out, pos = frames(Snapshot(_job("running", 2), [_row(1), _row(2)]), Position())
    assert [_parse(f)["event"] for f in out] == ["status", "epoch", "epoch"]
    assert [_parse(f)["id"] for f in out] == ["0-running", "1-running", "2-running"]
    assert pos == Position(2, "running")


def test_an_ended_job_sends_its_epochs_then_its_final_status() -> None:
    out, pos = frames(Snapshot(_job("succeeded", 3), [_row(3)]), Position(2, "running"))
    assert [(_parse(f)["event"], _parse(f)["id"]) for f in out] == [
        ("epoch", "3-running"),
        ("status", "3-succeeded"),
    ]
    assert pos == Position(3, "succeeded")


def test_nothing_new_sends_nothing() -> None:
    assert frames(Snapshot(_job("running", 1), []), Position(1, "running")) == (
        [],
        Position(1, "running"),
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Position()),
        ("3-running", Position(3, "running")),
        ("0-", Position(0, None)),
        ("garbage", Position()),
        ("2-exploded", Position()),
    ],
)
def test_last_event_id_parses_to_a_position(header: str | None, expected: Position) -> None:
    assert Position.parse(header) == expected


def test_a_live_job_streams_every_status_and_epoch_once(client: Client) -> None:
    job = client.submit({**TINY_MNIST_SPEC, "epochs": 3})
    events = list(client.events(job["id"]))
    epochs = [e.data["epoch"] for e in events if e.type == "epoch"]
    statuses = [e.data["status"] for e in events if e.type == "status"]
    assert epochs == [1, 2, 3]
    assert statuses[-1] == "succeeded" and len(statuses) == len(set(statuses))
    assert statuses[0] in ("queued", "running")
    assert all(e.data["epochs"] == 3 for e in events if e.type == "epoch")
    # The final status carries the finished job.
    assert events[-1].data["test_accuracy"] is not None
    assert events[-1].id == "3-succeeded"


def test_last_event_id_resumes_after_the_last_event_seen(
    client: Client, finished_job: dict[str, Any]
) -> None:
    resumed = list(client.events(finished_job["id"], last_event_id="1-running"))
    assert [(e.type, e.id) for e in resumed] == [("epoch", "2-running"), ("status", "2-succeeded")]
    assert resumed[0].data["epoch"] == 2
    everything = list(client.events(finished_job["id"], last_event_id="2-succeeded"))
    assert everything == []


def test_the_raw_stream_is_server_sent_events(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}) as http:
        r = http.get(f"/v1/jobs/{finished_job['id']}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    blocks = [b for b in r.text.split("\n\n") if b]
    assert blocks[0] == "retry: 2000"
    kinds = [_parse(b)["event"] for b in blocks[1:]]
    assert kinds == ["epoch", "epoch", "status"]


def test_someone_elses_job_is_404_and_no_token_is_401(
    stack: Stack, finished_job: dict[str, Any]
) -> None:
    with (
        Client(stack.url, create_token(stack.env, "mallory")) as mallory,
        pytest.raises(ApiError) as info,
    ):
        list(mallory.events(finished_job["id"]))
    assert info.value.status == 404 and info.value.type == "not_found"
    r = httpx.get(f"{stack.url}/v1/jobs/{finished_job['id']}/events")
    assert r.status_code == 401


def test_event_dataclass_round_trip() -> None:
    assert Event("epoch", {"epoch": 1}, "1-running").id == "1-running"
