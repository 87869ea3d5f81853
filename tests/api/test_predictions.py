"""Predictions over HTTP equal the core's for the same checkpoint; limits and bad inputs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from api.main import create_app
from api.settings import ApiSettings
from cnnlab.engine.checkpoints import loads
from cnnlab.engine.predict import Predictor
from tests.api.conftest import MODEL_JOB_SPEC, Caller, TrainedModel
from tests.utils.api_client import ApiClient
from tests.utils.datasets import patterned_images
from tests.utils.serving import serve


@pytest.fixture
def core(trained: TrainedModel) -> Predictor:
    return Predictor(loads(trained.checkpoint))


def _images(n: int, seed: int = 7) -> np.ndarray:
    return patterned_images(n, (28, 28), seed)[0]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_json_instances_match_the_core(
    client: ApiClient, alice: Caller, job_id: str, core: Predictor
) -> None:
    images = _images(5)
    body = {"instances": images.tolist()}
    r = client.post(f"/v1/jobs/{job_id}/predict", json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["job_id"] == job_id and out["epoch"] == 1
    assert out["predictions"] == core.predict_arrays(list(images))
    first = out["predictions"][0]
    assert set(first) == {"label", "class_name", "probabilities"}
    # Each probability is rounded to 6 decimals: ten of them sum to 1 within 10 × 5e-7.
    assert len(first["probabilities"]) == 10
    assert sum(first["probabilities"]) == pytest.approx(1, abs=5e-6)


def test_files_match_the_core_in_input_order(
    client: ApiClient, alice: Caller, job_id: str, core: Predictor
) -> None:
    blobs = [_png(a) for a in _images(6, seed=3)]
    files = [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(blobs)]
    r = client.post(f"/v1/jobs/{job_id}/predict", files=files, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == core.predict_images(blobs)


def test_409_before_the_job_has_a_model(client: ApiClient, alice: Caller, mnist: Path) -> None:
    job = client.post("/v1/jobs", json=MODEL_JOB_SPEC, headers=alice.headers).json()
    body = {"instances": _images(1).tolist()}
    r = client.post(f"/v1/jobs/{job['id']}/predict", json=body, headers=alice.headers)
    assert r.status_code == 409 and r.json()["detail"]["type"] == "conflict"


def test_bad_inputs_are_422_naming_the_item(client: ApiClient, alice: Caller, job_id: str) -> None:
    url = f"/v1/jobs/{job_id}/predict"
    good = _images(1)[0].tolist()
    r = client.post(url, json={"instances": [good, [[1, 2], [3, 4]]]}, headers=alice.headers)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["type"] == "bad_input" and detail["item"] == 1 and "shape" in detail["message"]

    r = client.post(url, json={"instances": [good, [[300] * 28] * 28]}, headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["item"] == 1

    files = [
        ("files", ("ok.png", _png(_images(1)[0]), "image/png")),
        ("files", ("broken.png", b"\x89PNG not really", "image/png")),
    ]
    r = client.post(url, files=files, headers=alice.headers)
    detail = r.json()["detail"]
    assert r.status_code == 422 and detail["item"] == 1 and detail["filename"] == "broken.png"

    bodies: list[object] = [{"instances": []}, {"images": [good]}, [good]]
    for body in bodies:
        r = client.post(url, json=body, headers=alice.headers)
        assert r.status_code == 422, body
        assert r.json()["detail"]["type"] == "invalid_request"
    r = client.post(url, files=[("other", ("a.png", b"x", "image/png"))], headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "files"
    r = client.post(url, content=b"hello", headers={**alice.headers, "content-type": "text/plain"})
    assert r.status_code == 415


@pytest.fixture
def small_limits_client(db_url: str) -> Iterator[ApiClient]:
    limits = ApiSettings(
        predict_max_images=3, predict_max_file_bytes=3_000, predict_max_request_bytes=40_000
    )
    with ApiClient(create_app(api_settings=limits)) as c:
        yield c


def test_upload_limits_are_413(small_limits_client: ApiClient, alice: Caller, job_id: str) -> None:
    client, url = small_limits_client, f"/v1/jobs/{job_id}/predict"
    png = _png(_images(1)[0])
    assert len(png) < 3_000
    r = client.post(url, files=[("files", ("a.png", png, "image/png"))] * 3, headers=alice.headers)
    assert r.status_code == 200

    r = client.post(url, files=[("files", ("a.png", png, "image/png"))] * 4, headers=alice.headers)
    assert r.status_code == 413 and r.json()["detail"]["limit_name"] == "images"
    r = client.post(url, json={"instances": _images(4).tolist()}, headers=alice.headers)
    assert r.status_code == 413 and r.json()["detail"]["limit_name"] == "images"

    noisy = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)
    r = client.post(
        url, files=[("files", ("big.png", _png(noisy), "image/png"))], headers=alice.headers
    )
    detail = r.json()["detail"]
    assert r.status_code == 413 and detail["limit_name"] == "file" and detail["item"] == 0

    huge = b"x" * 50_000
    r = client.post(url, files=[("files", ("huge.png", huge, "image/png"))], headers=alice.headers)
    assert r.status_code == 413 and r.json()["detail"]["limit_name"] == "request"


def test_models_are_cached_until_a_better_checkpoint(
    client: ApiClient, alice: Caller, job_id: str, db_url: str, trained: TrainedModel
) -> None:
    from cnnlab import lifecycle
    from cnnlab.store.db import session_scope
    from tests.utils.factories import metrics

    body = {"instances": _images(2).tolist()}
    url = f"/v1/jobs/{job_id}/predict"
    for _ in range(3):
        assert client.post(url, json=body, headers=alice.headers).json()["epoch"] == 1
    cache = client.app.state.predictors
    assert cache.loads == 1 and len(cache) == 1

    # A newer best checkpoint is a new cache key. (The bytes are the same model; its recorded
    # epoch is what the answer reports.)
    ckpt = loads(trained.checkpoint)
    ckpt["epoch"] = 2
    from cnnlab.engine.checkpoints import dumps

    with session_scope(db_url) as s:
        lifecycle.record_epoch(s, job_id, metrics(2, 0.9), last=dumps(ckpt), best=dumps(ckpt))
    assert client.post(url, json=body, headers=alice.headers).json()["epoch"] == 2
    assert cache.loads == 2


def test_cache_is_bounded_least_recently_used() -> None:
    from api.prediction.service import PredictorCache

    cache = PredictorCache(2)
    made: list[tuple[str, int]] = []

    def loader(key: tuple[str, int]) -> Any:
        def load() -> Any:
            made.append(key)
            return key

        return load

    for key in [("a", 1), ("b", 1), ("a", 1), ("c", 1), ("a", 1), ("b", 1)]:
        assert cache.get(key, loader(key)) == key
    # "b" was least recently used when "c" came, so it was loaded again at the end.
    assert made == [("a", 1), ("b", 1), ("c", 1), ("b", 1)] and len(cache) == 2


def test_over_real_loopback_http(db_url: str, alice: Caller, job_id: str, core: Predictor) -> None:
    blobs = [_png(a) for a in _images(3, seed=11)]
    files = [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(blobs)]
    with serve(create_app()) as url, httpx.Client(base_url=url, timeout=30) as http:
        r = http.post(f"/v1/jobs/{job_id}/predict", files=files, headers=alice.headers)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == core.predict_images(blobs)
        assert http.get("/healthz").status_code == 200


def test_serving_process_startup_sets_the_inference_threads(db_url: str) -> None:
    import anyio

    app = create_app(api_settings=ApiSettings(predict_threads=3))
    cache = app.state.predictors
    assert cache.torch_threads is None  # an app that is not served leaves torch alone

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            assert cache.torch_threads == 3

    anyio.run(start_and_stop)
