"""``GET /v1/searches/{id}/events``: a search's status and its trials' progress as server-sent
events, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from api.routes import events
from api.routes.events import SearchPosition, SearchSnapshot, search_frames
from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus
from tests.api.conftest import GRID, SPEC, Caller
from tests.api.test_searches import finish
from tests.utils.api_client import ApiClient, sse_events
from tests.utils.factories import metrics


def _search(client: ApiClient, caller: Caller) -> dict[str, Any]:
    r = client.post("/v1/searches", json={"base": SPEC, "grid": GRID}, headers=caller.headers)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "POLL_S", 0.02)


def test_an_ended_search_replays_its_trials_then_its_final_status(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    search = _search(client, alice)
    ids = [t["job_id"] for t in search["trials"]]
    finish(db_url, ids[0], 0.7, JobStatus.succeeded)
    finish(db_url, ids[1], 0.9, JobStatus.succeeded)

    r = client.get(f"/v1/searches/{search['id']}/events", headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = sse_events(r.text)
    assert [e["event"] for e in got] == ["trial", "trial", "status"]
    final = client.get(f"/v1/searches/{search['id']}", headers=alice.headers).json()
    assert got[-1]["data"] == final and final["best_job_id"] == ids[1]
    assert [e["data"] for e in got[:2]] == final["trials"]  # as the search lists them
    assert [e["data"]["score"] for e in got[:2]] == [0.7, 0.9]
    assert got[-1]["id"] == "s:1s.1s"

    # Resuming from the last event sends nothing more; from the first, what came after it.
    again = client.get(
        f"/v1/searches/{search['id']}/events",
        headers={**alice.headers, "Last-Event-ID": got[-1]["id"]},
    )
    assert sse_events(again.text) == []
    resumed = client.get(
        f"/v1/searches/{search['id']}/events",
        headers={**alice.headers, "Last-Event-ID": got[0]["id"]},
    )
    assert sse_events(resumed.text) == got[1:]


def test_a_running_search_streams_each_change_until_it_ends(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    search = _search(client, alice)
    ids = [t["job_id"] for t in search["trials"]]

    def work() -> None:
        time.sleep(0.3)
        with session_scope(db_url) as s:
            lifecycle.claim(s, ids[0], "w")
        time.sleep(0.3)
        with session_scope(db_url) as s:
            lifecycle.record_epoch(s, ids[0], metrics(1, 0.8), last=b"l", best=b"b")
        time.sleep(0.3)
        with session_scope(db_url) as s:
            lifecycle.finish_job(s, ids[0], JobStatus.succeeded, test_accuracy=0.78)
        finish(db_url, ids[1], 0.6, JobStatus.failed)

    worker = threading.Thread(target=work)
    worker.start()
    r = client.get(f"/v1/searches/{search['id']}/events", headers=alice.headers, timeout=30)
    worker.join()
    got = sse_events(r.text)
    seen = [(e["event"], e["data"].get("job_id"), e["data"]["status"]) for e in got]
    assert seen[:3] == [
        ("status", None, "queued"),
        ("trial", ids[0], "queued"),
        ("trial", ids[1], "queued"),
    ]
    first = [
        (e["data"]["status"], e["data"]["score"]) for e in got if e["data"].get("job_id") == ids[0]
    ]
    assert first == [("queued", None), ("running", None), ("running", 0.8), ("succeeded", 0.8)]
    assert [e["data"]["status"] for e in got if e["event"] == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert got[-1]["event"] == "status" and got[-1]["data"]["best_job_id"] == ids[0]
    assert len({e["id"] for e in got}) == len(got)  # every event moves the position


def test_another_users_search_is_404(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    search = _search(client, alice)
    r = client.get(f"/v1/searches/{search['id']}/events", headers=bob.headers)
    assert r.status_code == 404
    assert client.get("/v1/searches/nope/events", headers=alice.headers).status_code == 404
    assert client.get(f"/v1/searches/{search['id']}/events").status_code == 401


def _trial(job_id: str, status: str) -> dict[str, Any]:
    return {"job_id": job_id, "params": {}, "status": status, "val_accuracy": None, "score": None}


def test_trial_changes_come_between_a_new_status_and_a_final_one() -> None:
    running = SearchSnapshot(
        {"status": "running", "trials": [_trial("a", "running"), _trial("b", "queued")]},
        ((2, "running"), (0, "queued")),
    )
    out, pos = search_frames(running, SearchPosition("queued", ((1, "running"), (0, "queued"))))
    assert [(sse_events(f)[0]["event"], sse_events(f)[0]["id"]) for f in out] == [
        ("status", "r:1r.0q"),
        ("trial", "r:2r.0q"),
    ]
    assert search_frames(running, pos) == ([], pos)

    done = SearchSnapshot(
        {"status": "succeeded", "trials": [_trial("a", "succeeded"), _trial("b", "failed")]},
        ((3, "succeeded"), (0, "failed")),
    )
    out, pos = search_frames(done, pos)
    assert [sse_events(f)[0]["id"] for f in out] == ["r:3s.0q", "r:3s.0f", "s:3s.0f"]
    assert pos == SearchPosition("succeeded", ((3, "succeeded"), (0, "failed")))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, SearchPosition()),
        ("", SearchPosition()),
        (":", SearchPosition()),
        ("r:2r.-.0q", SearchPosition("running", ((2, "running"), None, (0, "queued")))),
        ("q:-", SearchPosition("queued", (None,))),
        ("x:1r", SearchPosition()),
        ("r:1z", SearchPosition()),
        ("3-running", SearchPosition()),  # a job stream's id
    ],
)
def test_last_event_id_is_parsed_or_ignored(header: str | None, expected: SearchPosition) -> None:
    position = SearchPosition.parse(header)
    assert position == expected
    if expected.status is not None:
        assert SearchPosition.parse(position.id) == position


def test_every_status_has_its_own_letter_in_event_ids() -> None:
    assert len({str(s)[0] for s in JobStatus}) == len(JobStatus)


def test_each_status_has_its_own_letter_in_event_ids() -> None:
    from api.routes.events import _CODE, _SEARCH_CODE

    for codes in (_CODE, _SEARCH_CODE):
        assert len(set(codes.values())) == len(codes), codes
