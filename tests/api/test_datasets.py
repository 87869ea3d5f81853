"""Uploaded datasets over HTTP: the real app, the ingest as a worker runs it (in this process),
archives of real Fashion-MNIST images."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.main import create_app
from api.routes import events
from api.settings import ApiSettings
from cnnlab.lifecycle import datasets as lifecycle
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Blob, DatasetVersion
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient, sse_events, upload_scope
from tests.utils.image_archives import make_zip, write_class_folders
from worker import datasets as worker_datasets
from worker.datasets import run_ingest

ZIP = {"Content-Type": "application/zip"}


@pytest.fixture
def archive(tmp_path: Path) -> bytes:
    """Three classes of real images, 8 each, at two sizes, zipped."""
    folder = write_class_folders(tmp_path / "parts", per_class=8, sizes=(28, 40))
    target = make_zip(folder)
    # Bytes of this test's own (a zip stamps its members' times to 2 s): a module's tests share
    # one PostgreSQL database, and one test's stored blob must not count in another's.
    with zipfile.ZipFile(target, "a") as z:
        z.comment = uuid.uuid4().hex.encode()
    return target.read_bytes()


def upload(
    client: ApiClient, caller: Caller, body: bytes, name: str = "parts", **params: object
) -> dict[str, object]:
    r = client.post(
        "/v1/datasets",
        params={"name": name, **params},
        content=body,
        headers={**caller.headers, **ZIP},
    )
    assert r.status_code == 202, r.text
    data: dict[str, object] = r.json()
    return data


def version_id(db_url: str, checksum: str, version: int) -> str:
    with session_scope(db_url) as s:
        return s.scalars(
            select(DatasetVersion.id).where(
                DatasetVersion.checksum == checksum, DatasetVersion.version == version
            )
        ).one()


def blobs(db_url: str, checksum: str) -> int:
    with session_scope(db_url) as s:
        return int(
            s.scalar(select(func.count()).select_from(Blob).where(Blob.checksum == checksum)) or 0
        )


def ingest(db_url: str, answer: dict[str, object]) -> None:
    """Play the worker the message went to."""
    run_ingest(version_id(db_url, str(answer["checksum"]), int(str(answer["version"]))), "w/1")


def test_an_upload_is_ingested_and_described(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    answer = upload(client, alice, archive)
    assert (answer["name"], answer["version"], answer["status"]) == ("parts", 1, "ingesting")
    ingest(db_url, answer)

    record = client.get("/v1/datasets/parts/versions/1", headers=alice.headers).json()
    assert record["status"] == "ready", record
    assert record["classes"] == ["Pullover", "T-shirt", "Trouser"] or len(record["classes"]) == 3
    assert sum(record["counts"].values()) == 24 and record["counts"]["test"] > 0
    assert (record["channels"], record["image_size"]) == (1, 28)
    assert len(record["mean"]) == 1 and record["report"]
    png = client.get("/v1/datasets/parts/versions/1/samples.png", headers=alice.headers)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    listed = {d["name"]: d for d in client.get("/v1/datasets", headers=alice.headers).json()}
    assert listed["mnist"]["kind"] == "builtin"
    assert listed["parts"]["kind"] == "uploaded" and listed["parts"]["available"]
    assert listed["parts"]["shape"] == [1, 28, 28]
    events = client.get("/v1/datasets/parts/versions/1/events", headers=alice.headers)
    assert "event: status" in events.text and '"ready"' in events.text


def test_two_uploads_of_one_name_are_two_versions_of_one_blob(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    first, second = upload(client, alice, archive), upload(client, alice, archive)
    assert (first["version"], second["version"]) == (1, 2)
    assert first["checksum"] == second["checksum"]
    assert blobs(db_url, str(first["checksum"])) == 1
    versions = client.get("/v1/datasets/parts", headers=alice.headers).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]


def test_a_dataset_that_is_not_one_fails_with_the_reason(
    client: ApiClient, alice: Caller, db_url: str, tmp_path: Path
) -> None:
    folder = write_class_folders(tmp_path / "one", per_class=6, classes=(0,))
    answer = upload(client, alice, make_zip(folder).read_bytes(), name="one")
    ingest(db_url, answer)
    record = client.get("/v1/datasets/one/versions/1", headers=alice.headers).json()
    assert record["status"] == "failed"
    assert record["error"]["type"] == "invalid_dataset"
    for dataset in ("one", "one@1"):  # no ready version; a failed one
        job = {"dataset": dataset, "val_size": 3, "batch_size": 4, "epochs": 1}
        r = client.post("/v1/jobs", json=job, headers=alice.headers)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset", r.text


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("CNNLAB_DATASET_MAX_FILES", "10", "more than 10 entries"),
        ("CNNLAB_DATASET_MAX_UNCOMPRESSED_BYTES", "2000", "over the limit of 2,000"),
        ("CNNLAB_DATASET_MAX_IMAGE_PIXELS", "100", "24 too large"),
    ],
)
def test_a_lowered_ingest_limit_refuses_an_archive_the_defaults_take(
    client: ApiClient,
    alice: Caller,
    db_url: str,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: str,
    says: str,
) -> None:
    ingest(db_url, upload(client, alice, archive))
    fine = client.get("/v1/datasets/parts/versions/1", headers=alice.headers).json()
    assert fine["status"] == "ready", fine

    monkeypatch.setenv(setting, value)  # read by the worker that decodes it
    get_settings.cache_clear()
    try:
        ingest(db_url, upload(client, alice, archive))  # the same bytes, version 2
    finally:
        monkeypatch.delenv(setting)
        get_settings.cache_clear()
    record = client.get("/v1/datasets/parts/versions/2", headers=alice.headers).json()
    assert record["status"] == "failed", record
    assert record["error"]["type"] == "invalid_dataset"
    assert says in record["error"]["message"], record["error"]


def test_an_upload_is_not_held_to_the_json_body_limit(
    db_url: str, alice: Caller, archive: bytes
) -> None:
    """Its own limit (CNNLAB_DATASET_MAX_BYTES) applies, not the one for JSON bodies."""
    limit = 1024
    assert len(archive) > limit
    with ApiClient(create_app(api_settings=ApiSettings(max_body_bytes=limit))) as small:
        answer = upload(small, alice, archive)
        assert answer["status"] == "ingesting"
        job = {"dataset": "parts", "val_size": 3, "batch_size": 4, "epochs": 1, "x": "y" * limit}
        r = small.post("/v1/jobs", json=job, headers=alice.headers)
        assert r.status_code == 413, r.text  # a JSON body still is


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[ApiClient]:
    monkeypatch.setenv("CNNLAB_DATASET_MAX_BYTES", "4096")
    get_settings.cache_clear()
    with ApiClient(create_app()) as c:
        yield c


def test_an_upload_past_the_limit_is_413_and_leaves_nothing(
    small_limit: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    url, params = "/v1/datasets", {"name": "big"}
    headers = {**alice.headers, **ZIP}
    declared = small_limit.post(url, params=params, content=archive, headers=headers)
    assert declared.status_code == 413 and declared.json()["detail"]["type"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(archive), 1000):
            yield archive[i : i + 1000]

    streamed = small_limit.post(url, params=params, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert small_limit.get("/v1/datasets/big", headers=alice.headers).status_code == 404
    assert not list((get_settings().home / "uploads").iterdir())
    assert blobs(db_url, hashlib.sha256(archive).hexdigest()) == 0


def test_what_is_not_an_upload_is_refused(client: ApiClient, alice: Caller) -> None:
    headers = {**alice.headers, **ZIP}
    json_body = client.post("/v1/datasets", params={"name": "x"}, json={}, headers=alice.headers)
    assert json_body.status_code == 415
    for name in ("mnist", "Bad Name", "-x"):
        r = client.post("/v1/datasets", params={"name": name}, content=b"PK", headers=headers)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "name", (name, r.text)


def test_specs_name_an_upload_by_name_or_version(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    spec = {"val_size": 3, "batch_size": 4, "epochs": 1}
    first = upload(client, alice, archive)
    for dataset in ("parts", "parts@1", "parts@7", "nothing"):  # ingesting, missing, unknown
        r = client.post("/v1/jobs", json={**spec, "dataset": dataset}, headers=alice.headers)
        assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset", (dataset, r.text)
    ingest(db_url, first)
    job = client.post("/v1/jobs", json={**spec, "dataset": "parts"}, headers=alice.headers)
    assert job.status_code == 201, job.text
    assert job.json()["spec"]["dataset"] == "parts@1"  # pinned to the version checked

    # In use by a queued job: neither the version nor the dataset may go.
    for path in ("/v1/datasets/parts/versions/1", "/v1/datasets/parts"):
        r = client.request("DELETE", path, headers=alice.headers)
        assert r.status_code == 409 and r.json()["detail"]["type"] == "dataset_in_use"
    client.post(f"/v1/jobs/{job.json()['id']}/cancel", headers=alice.headers)
    r = client.request("DELETE", "/v1/datasets/parts/versions/1", headers=alice.headers)
    assert r.status_code == 204
    assert blobs(db_url, str(first["checksum"])) == 0
    # Numbers are never given again.
    assert upload(client, alice, archive)["version"] == 2


def test_another_users_dataset_is_not_found(
    client: ApiClient, alice: Caller, bob: Caller, db_url: str, archive: bytes
) -> None:
    ingest(db_url, upload(client, alice, archive))
    for method, path in (
        ("GET", "/v1/datasets/parts"),
        ("GET", "/v1/datasets/parts/versions/1"),
        ("GET", "/v1/datasets/parts/versions/1/samples.png"),
        ("GET", "/v1/datasets/parts/versions/1/events"),
        ("DELETE", "/v1/datasets/parts/versions/1"),
        ("DELETE", "/v1/datasets/parts"),
    ):
        r = client.request(method, path, headers=bob.headers)
        assert r.status_code == 404 and r.json()["detail"]["type"] == "not_found", (method, path)
    names = [d["name"] for d in client.get("/v1/datasets", headers=bob.headers).json()]
    assert "parts" not in names
    job = {"dataset": "parts", "val_size": 3, "batch_size": 4, "epochs": 1}
    r = client.post("/v1/jobs", json=job, headers=bob.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset"
    # Bob's own upload of the same name is his version 1.
    assert upload(client, bob, archive)["version"] == 1


def test_an_interrupted_upload_leaves_nothing(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    """The client goes away half way through the body: no version, no blob, no temp file."""
    import anyio

    messages: list[dict[str, object]] = [
        {"type": "http.request", "body": archive[: len(archive) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = upload_scope(alice.token, "cut")

    async def call() -> None:
        await client.app(scope, receive, send)

    anyio.run(call)
    assert not any(m.get("status") == 202 for m in sent)
    assert client.get("/v1/datasets/cut", headers=alice.headers).status_code == 404
    assert not list((get_settings().home / "uploads").iterdir())
    assert blobs(db_url, hashlib.sha256(archive).hexdigest()) == 0


def test_a_search_trains_every_trial_on_the_version_it_was_checked_against(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes
) -> None:
    ingest(db_url, upload(client, alice, archive))
    base = {"dataset": "parts", "val_size": 3, "batch_size": 4, "epochs": 1}
    r = client.post(
        "/v1/searches", json={"base": base, "grid": {"seed": [1, 2]}}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["base"]["dataset"] == "parts@1"
    trials = client.get(
        "/v1/jobs", params={"search_id": r.json()["id"]}, headers=alice.headers
    ).json()["items"]
    assert {t["spec"]["dataset"] for t in trials} == {"parts@1"}
    plan = client.post(
        "/v1/searches/plan", json={"base": base, "grid": {"seed": [1, 2]}}, headers=alice.headers
    )
    assert plan.status_code == 200, plan.text
    missing = client.post(
        "/v1/searches",
        json={"base": {**base, "dataset": "nope"}, "grid": {"seed": [1]}},
        headers=alice.headers,
    )
    assert missing.status_code == 422 and missing.json()["detail"]["field"] == "base.dataset"


def test_uploads_count_against_the_storage_quota(
    monkeypatch: pytest.MonkeyPatch, db_url: str, alice: Caller, archive: bytes
) -> None:
    monkeypatch.setenv("CNNLAB_MAX_STORAGE_BYTES", str(len(archive)))
    get_settings.cache_clear()
    with ApiClient(create_app()) as client:
        upload(client, alice, archive)  # room left: stored
        storage = client.get("/v1/me", headers=alice.headers).json()["storage"]
        assert storage["dataset_bytes"] == len(archive) == storage["used_bytes"]
        r = client.post(
            "/v1/datasets",
            params={"name": "more"},
            content=archive,
            headers={**alice.headers, **ZIP},
        )
        assert r.status_code == 422 and r.json()["detail"]["type"] == "storage_quota"
        job = {"dataset": "mnist", "val_size": 3, "batch_size": 4, "epochs": 1}
        full = client.post("/v1/jobs", json=job, headers=alice.headers)
        assert full.status_code == 422 and full.json()["detail"]["type"] == "storage_quota"


def test_a_reconnecting_stream_gets_only_what_changed_since_its_last_event(
    client: ApiClient,
    alice: Caller,
    db_url: str,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "POLL_S", 0.02)
    monkeypatch.setattr(worker_datasets, "PROGRESS_EVERY_S", 0.0)  # every image's progress
    answer = upload(client, alice, archive)
    url = "/v1/datasets/parts/versions/1/events"
    # Decoded by a worker (a thread here) while the stream watches.
    worker = threading.Thread(target=ingest, args=(db_url, answer))
    worker.start()
    try:
        got = sse_events(client.get(url, headers=alice.headers).text)
    finally:
        worker.join()
    record = client.get("/v1/datasets/parts/versions/1", headers=alice.headers).json()
    assert got[-1]["data"] == record and record["status"] == "ready"
    assert got[-1]["id"] == "ready"
    ids = [e["id"] for e in got]
    assert len(set(ids)) == len(ids)  # each event a state of its own, named by its id
    for e in got[:-1]:
        progress = e["data"]["progress"]
        assert e["data"]["status"] == "ingesting"
        assert e["id"] == (
            "ingesting" if progress is None else f"ingesting:{progress['done']}/{progress['total']}"
        )

    def resumed(last_event_id: str) -> list[dict[str, Any]]:
        headers = {**alice.headers, "Last-Event-ID": last_event_id}
        return sse_events(client.get(url, headers=headers).text)

    # After the last event: nothing more (the stream ends at once). After an earlier one: the
    # version as it is now, once. An id that is not one of ours: from the beginning.
    assert resumed(got[-1]["id"]) == []
    assert resumed("ingesting") == [got[-1]]  # what the upload's answer said
    assert resumed("ingesting:3/24") == [got[-1]]
    assert resumed("no-such-id") == [got[-1]]


def test_a_stream_resumed_at_the_current_progress_waits_for_the_next_change(
    client: ApiClient, alice: Caller, db_url: str, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "POLL_S", 0.02)
    answer = upload(client, alice, archive)
    vid = version_id(db_url, str(answer["checksum"]), 1)
    with session_scope(db_url) as s:
        held = lifecycle.claim_ingest(s, vid, "w/1", lease_seconds=60, max_attempts=3)
        assert held is not None
        lifecycle.report_progress(s, vid, held.attempt, 5, 24, 60)
    url = "/v1/datasets/parts/versions/1/events"

    def fail_later() -> None:
        time.sleep(0.5)
        with session_scope(db_url) as s:
            error = {"type": "invalid_dataset", "message": "no"}
            assert lifecycle.finish_ingest(s, vid, held.attempt, error=error)

    worker = threading.Thread(target=fail_later)
    worker.start()
    try:
        headers = {**alice.headers, "Last-Event-ID": "ingesting:5/24"}
        got = sse_events(client.get(url, headers=headers).text)
    finally:
        worker.join()
    # The client had 5/24: it is sent only the change after it, the version failing.
    assert [(e["id"], e["data"]["status"]) for e in got] == [("failed", "failed")]
