"""The dashboard's data: sample images, the confusion matrix, and the page and its files."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from cnnlab.client import Client
from cnnlab.testing.stack import Stack
from tests.utils.service import TINY_MNIST_SPEC


@pytest.fixture
def http(stack: Stack, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as c:
        yield c


def test_samples_are_labelled_training_images(
    http: httpx.Client, finished_job: dict[str, Any]
) -> None:
    r = http.get(f"/v1/jobs/{finished_job['id']}/samples", params={"n": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dataset"] == "mnist" and len(body["class_names"]) == 10
    assert len(body["items"]) == 6
    for item in body["items"]:
        image = Image.open(io.BytesIO(base64.b64decode(item["png"])))
        assert image.size == (28, 28) and image.mode == "L"
        assert item["class_name"] == body["class_names"][item["label"]]
        # The generated digits draw their label as a bright band: the label matches the pixels.
        rows = np.asarray(image, dtype=np.int64).sum(axis=1).tolist()
        assert rows.index(max(rows)) == item["label"] * 28 // 10
    assert http.get(f"/v1/jobs/{finished_job['id']}/samples", params={"n": 0}).status_code == 422


def test_confusion_matrix_matches_the_test_accuracy(
    http: httpx.Client, finished_job: dict[str, Any]
) -> None:
    r = http.get(f"/v1/jobs/{finished_job['id']}/confusion")
    assert r.status_code == 200, r.text
    body = r.json()
    matrix = body["matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert sum(map(sum, matrix)) == body["count"] == 300  # the whole test split
    assert body["accuracy"] == pytest.approx(finished_job["test_accuracy"], abs=1e-6)
    # The same answer again. (That it comes from the cache, computed once, is for an in-process
    # test to tell: tests/api/test_insights.py counts the cache's hits.)
    assert http.get(f"/v1/jobs/{finished_job['id']}/confusion").json() == body


def test_confusion_waits_for_success(client: Client, http: httpx.Client) -> None:
    job = client.submit({**TINY_MNIST_SPEC, "epochs": 200})
    try:
        r = http.get(f"/v1/jobs/{job['id']}/confusion")
        assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"
    finally:
        client.cancel(job["id"])
    client.wait(job["id"], timeout=60)


def test_insights_are_private(stack: Stack, finished_job: dict[str, Any]) -> None:
    for path in ("samples", "confusion"):
        assert httpx.get(f"{stack.url}/v1/jobs/{finished_job['id']}/{path}").status_code == 401


def test_the_page_and_its_files_are_served(stack: Stack) -> None:
    page = httpx.get(f"{stack.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/static/main.js' in page.text
    script = httpx.get(f"{stack.url}/static/main.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for bad in ("nope.js", "../router.py", "..%2Frouter.py", "%2e%2e/router.py", ""):
        assert httpx.get(f"{stack.url}/static/{bad}").status_code == 404, bad
