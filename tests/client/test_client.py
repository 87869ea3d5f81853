"""``cnnlab.client.Client`` against a running service."""

from __future__ import annotations

import io
import sys
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.jobs import EpochBar
from cnnlab.client import ApiError, Client, ClientError
from cnnlab.testing.stack import Stack, free_port
from tests.utils.datasets import patterned_images
from tests.utils.service import TINY_MNIST_SPEC


def test_submit_then_wait_returns_the_ended_job(
    client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar shows on terminals only
    job = client.submit(TINY_MNIST_SPEC)
    assert job["status"] == "queued" and job["spec"]["epochs"] == 2
    bar = EpochBar(job)  # the CLI's bar, fed each event by wait()
    try:
        done = client.wait(job["id"], on_event=bar.event, timeout=120)
    finally:
        bar.close()
    assert done["status"] == "succeeded" and done["epoch"] == 2
    assert done["test_accuracy"] is not None
    # The progress bar (stderr) counted the epochs.
    assert "2/2" in capsys.readouterr().err


def test_metrics_are_a_list_of_dicts(client: Client, finished_job: dict[str, Any]) -> None:
    rows = client.metrics(finished_job["id"])
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    assert max(r["val_accuracy"] for r in rows) == finished_job["best_val_accuracy"]


def test_metrics_frame_names_pandas_when_it_is_missing(
    client: Client, finished_job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        client.metrics_frame(finished_job["id"])


def test_metrics_frame_is_indexed_by_epoch(client: Client, finished_job: dict[str, Any]) -> None:
    frame = client.metrics_frame(finished_job["id"])
    assert list(frame.index) == [1, 2]
    assert "val_accuracy" in frame.columns


def test_predict_from_arrays_pil_images_and_bytes_agree(
    client: Client, finished_job: dict[str, Any]
) -> None:
    images, labels = patterned_images(4, (28, 28), seed=7)
    from_arrays = client.predict(finished_job["id"], list(images))
    from_batch = client.predict(finished_job["id"], images)
    pil = [Image.fromarray(a) for a in images]
    from_pil = client.predict(finished_job["id"], pil)
    pngs = []
    for p in pil:
        buf = io.BytesIO()
        p.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    from_bytes = client.predict(finished_job["id"], pngs)
    assert from_arrays == from_batch == from_pil == from_bytes
    assert client.predict(finished_job["id"], images[0]) == from_arrays[:1]
    assert client.predict(finished_job["id"], pil[0]) == from_arrays[:1]
    assert len(from_arrays) == 4
    # The patterns are easy: the tiny model gets them right.
    assert [p["label"] for p in from_arrays] == labels.tolist()
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-3 for p in from_arrays)


def test_download_checkpoint_and_load_it_as_a_torch_module(
    client: Client, finished_job: dict[str, Any], tmp_path: Any
) -> None:
    path = tmp_path / "best.pt"
    data = client.checkpoint(finished_job["id"], path)
    assert path.read_bytes() == data
    assert torch.load(io.BytesIO(data))["epoch"] >= 1
    model = client.load_model(finished_job["id"])
    assert isinstance(model, torch.nn.Module) and not model.training
    images, _ = patterned_images(8, (28, 28), seed=3)
    x = (torch.from_numpy(images).float().unsqueeze(1) / 255 - 0.1307) / 0.3081
    with torch.inference_mode():
        predicted = model(x).argmax(1)
    assert predicted.tolist() == client_labels(client, finished_job["id"], images)


def client_labels(client: Client, job_id: str, images: np.ndarray) -> list[int]:
    return [p["label"] for p in client.predict(job_id, images)]


def test_api_errors_carry_status_type_and_the_field(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.submit({**TINY_MNIST_SPEC, "optimizer": {"lr": -1}})
    assert info.value.status == 422
    assert "optimizer.lr" in info.value.message
    with pytest.raises(ApiError) as missing:
        client.job("0" * 32)
    assert missing.value.status == 404 and missing.value.type == "not_found"
    assert "not found" in str(missing.value)


def test_a_bad_token_is_401(stack: Stack) -> None:
    with Client(stack.url, "not-a-token") as c, pytest.raises(ApiError) as info:
        c.jobs()
    assert info.value.status == 401


def test_no_token_and_no_server_are_client_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_TOKEN", raising=False)
    with pytest.raises(ClientError, match="CNNLAB_TOKEN"):
        Client("http://127.0.0.1:1")
    with (
        Client(f"http://127.0.0.1:{free_port()}", "t") as c,
        pytest.raises(ClientError, match="cannot reach"),
    ):
        c.jobs()


def test_url_and_token_come_from_the_environment(
    stack: Stack, token: str, monkeypatch: pytest.MonkeyPatch, finished_job: dict[str, Any]
) -> None:
    monkeypatch.setenv("CNNLAB_URL", stack.url)
    monkeypatch.setenv("CNNLAB_TOKEN", token)
    with Client() as c:
        assert c.job(finished_job["id"])["id"] == finished_job["id"]


def test_jobs_filter_by_status_and_follow_pages(
    client: Client, finished_job: dict[str, Any]
) -> None:
    succeeded = client.jobs("succeeded")
    assert finished_job["id"] in {j["id"] for j in succeeded}
    assert all(j["status"] == "succeeded" for j in succeeded)
    assert len(client.jobs(limit=1)) == 1
    assert client.jobs("failed", search_id="nope") == []


def test_a_search_runs_its_grid_and_names_the_best_trial(client: Client) -> None:
    search = client.search(
        TINY_MNIST_SPEC, {"optimizer.lr": [0.01, 0.1]}, metric="val_accuracy", mode="max"
    )
    assert len(search["trials"]) == 2
    done = client.wait_search(search["id"], poll=0.2, timeout=120)
    assert done["status"] == "succeeded"
    assert done["best_job_id"] in {t["job_id"] for t in done["trials"]}
    assert search["id"] in {s["id"] for s in client.searches()}


def test_cancel_stops_a_job(client: Client) -> None:
    job = client.submit({**TINY_MNIST_SPEC, "epochs": 200})
    answer = client.cancel(job["id"])
    assert answer["cancel_requested"] is True
    done = client.wait(job["id"], timeout=60)
    assert done["status"] == "cancelled"


def test_jobs_and_searches_follow_the_next_cursor() -> None:
    seen: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return httpx.Response(200, json={"items": [{"id": "a"}, {"id": "b"}], "next": "c2"})
        return httpx.Response(200, json={"items": [{"id": "c"}], "next": None})

    with Client("http://lab", "t", transport=httpx.MockTransport(answer)) as c:
        assert [s["id"] for s in c.searches()] == ["a", "b", "c"]
        assert [j["id"] for j in c.jobs("running")] == ["a", "b", "c"]
        assert [j["id"] for j in c.jobs(limit=2)] == ["a", "b"]
    assert seen[1]["cursor"] == "c2" and seen[2]["status"] == "running"
    assert seen[-1]["limit"] == "2"
