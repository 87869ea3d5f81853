"""An upload's temporary file: what a killed API process leaves behind is swept (at start and
every few minutes), what a live upload is writing is not, however slow its client; the API
answers other requests while an upload streams."""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from api.main import create_app
from api.upload_files import sweep_stale
from cnnlab.settings import get_settings
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient, upload_scope
from tests.utils.image_archives import make_zip, write_class_folders

AN_HOUR_AGO = time.time() - 3600


def _left_by_a_killed_process(name: str) -> Path:
    """A half-written upload file that no process holds, last written an hour ago."""
    folder = get_settings().home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"PK\x03\x04 half an archive")
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


def test_the_api_sweeps_what_a_killed_process_left_when_it_starts(cnnlab_home: Path) -> None:
    left = _left_by_a_killed_process("tmpkilled.upload")
    young = _left_by_a_killed_process("tmpyoung.upload")
    os.utime(young, None)  # written just now: maybe an upload between creating and locking it
    other = _left_by_a_killed_process("notes.txt")  # not an upload's
    app = create_app()

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            assert not left.exists()

    anyio.run(start_and_stop)
    assert young.exists() and other.exists()


def test_a_live_uploads_file_stays_while_a_killed_ones_goes(
    client: ApiClient, alice: Caller, tmp_path: Path
) -> None:
    folder = write_class_folders(tmp_path / "parts", per_class=6)
    body = make_zip(folder).read_bytes()
    left = _left_by_a_killed_process("tmpkilled.upload")
    uploads = left.parent
    sent: list[MutableMapping[str, Any]] = []

    async def scenario() -> None:
        stalled, rest = anyio.Event(), anyio.Event()
        parts = [body[: len(body) // 2], body[len(body) // 2 :]]

        async def receive() -> MutableMapping[str, Any]:
            if len(parts) == 2:
                return {"type": "http.request", "body": parts.pop(0), "more_body": True}
            if parts:
                stalled.set()
                await rest.wait()  # a client that stalls half way
                return {"type": "http.request", "body": parts.pop(0), "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope: dict[str, Any] = upload_scope(alice.token, "slow")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.app, scope, receive, send)
            with anyio.fail_after(60):
                await stalled.wait()  # half the body read: its file made and locked
            (path,) = [p for p in uploads.glob("*.upload") if p != left]
            os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))  # as if its client had stalled an hour
            removed = await anyio.to_thread.run_sync(sweep_stale, get_settings())
            assert removed == [left] and not left.exists()
            assert path.exists()  # held by the live upload
            # The API answers meanwhile (how fast: ``python -m bench ingest``).
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as other:
                assert (await other.get("/healthz")).status_code == 200
            rest.set()

    anyio.run(scenario)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [202]
    assert not list(uploads.iterdir())  # the upload removed its own file when it ended
    versions = client.get("/v1/datasets/slow", headers=alice.headers).json()["versions"]
    assert [v["status"] for v in versions] == ["ingesting"]


@pytest.mark.parametrize("stale", ["1", "7200"])
def test_only_files_unwritten_for_the_stale_period_go(
    cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch, stale: str
) -> None:
    monkeypatch.setenv("CNNLAB_DATASET_UPLOAD_STALE_SECONDS", stale)
    get_settings.cache_clear()
    left = _left_by_a_killed_process("tmpkilled.upload")
    half_hour = time.time() - 1800
    os.utime(left, (half_hour, half_hour))
    removed = sweep_stale(get_settings())
    assert removed == ([left] if stale == "1" else [])
