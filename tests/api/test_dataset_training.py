"""From a folder of one's own pictures to a model that names them: upload, ingest, train on
``NAME`` and on ``NAME@1``, predict a picture of another size, register, delete the dataset, and
predict again. The worker's work runs in this process, as the worker runs it."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.api.conftest import Caller
from tests.api.test_datasets import ZIP, ingest
from tests.utils.api_client import ApiClient
from tests.utils.image_archives import make_zip, picture, real_images, write_class_folders
from worker.tasks import run_job

NAMES = ["bolt", "nut", "washer"]


def png_of(label: int, size: tuple[int, int]) -> bytes:
    """A real image of class ``label`` not in the archive, at ``size``."""
    _, pixels = real_images(1, [label], offset=40)[0]
    buf = io.BytesIO()
    picture(pixels, size, colour=True).save(buf, format="PNG")
    return buf.getvalue()


def test_own_pictures_to_a_served_model(
    client: ApiClient, alice: Caller, db_url: str, tmp_path: Path
) -> None:
    folder = write_class_folders(tmp_path / "parts", per_class=12, names=NAMES, sizes=(28, 36))
    r = client.post(
        "/v1/datasets",
        params={"name": "parts", "resize": "pad"},
        content=make_zip(folder).read_bytes(),
        headers={**alice.headers, **ZIP},
    )
    assert r.status_code == 202, r.text
    ingest(db_url, r.json())
    record = client.get("/v1/datasets/parts/versions/1", headers=alice.headers).json()
    assert record["status"] == "ready" and record["classes"] == NAMES

    spec = {"val_size": 0.2, "batch_size": 8, "epochs": 2, "device": "cpu"}
    jobs = []
    for dataset in ("parts", "parts@1"):
        job = client.post("/v1/jobs", json={**spec, "dataset": dataset}, headers=alice.headers)
        assert job.status_code == 201, job.text
        jobs.append(job.json()["id"])
        assert run_job(job.json()["id"], "test-worker/1") == "succeeded"
    first = client.get(f"/v1/jobs/{jobs[0]}", headers=alice.headers).json()
    assert first["spec"]["dataset"] == "parts@1" and first["test_accuracy"] is not None

    files = [("files", (f"{i}.png", png_of(i, (50, 30)), "image/png")) for i in range(3)]
    answer = client.post(f"/v1/jobs/{jobs[1]}/predict", files=files, headers=alice.headers)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [len(p["probabilities"]) for p in predictions] == [3, 3, 3]
    assert {p["class_name"] for p in predictions} <= set(NAMES)

    confusion = client.get(f"/v1/jobs/{jobs[0]}/confusion", headers=alice.headers)
    assert confusion.status_code == 200, confusion.text
    assert confusion.json()["class_names"] == NAMES
    samples = client.get(f"/v1/jobs/{jobs[0]}/samples", headers=alice.headers)
    assert samples.status_code == 200 and samples.json()["class_names"] == NAMES

    model = {"name": "parts-model", "job_id": jobs[1], "checkpoint": "best"}
    assert client.post("/v1/models", json=model, headers=alice.headers).status_code == 201
    gone = client.request("DELETE", "/v1/datasets/parts", headers=alice.headers)
    assert gone.status_code == 204
    assert client.get("/v1/datasets/parts", headers=alice.headers).status_code == 404
    again = client.post("/v1/models/parts-model/predict", files=files, headers=alice.headers)
    assert again.status_code == 200, again.text
    assert [p["class_name"] for p in again.json()["predictions"]] == [
        p["class_name"] for p in predictions
    ]
    with Image.open(io.BytesIO(files[0][1][1])) as im:
        assert im.size != (28, 28)  # another size than the dataset's
