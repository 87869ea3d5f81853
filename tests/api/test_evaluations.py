"""Evaluations, comparisons and batch predictions through the real app, run by the worker's
task in this process (worker processes run it in tests/faults)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from cnnlab.store.db import session_scope
from cnnlab.store.tables import BatchPredictionRow, Job, utcnow
from tests.api.conftest import MODEL_JOB_SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient, sse_events
from worker.tasks import run_job


def _register(
    client: ApiClient, caller: Caller, db_url: str, model: TrainedModel, name: str
) -> int:
    job = client.post("/v1/jobs", json=MODEL_JOB_SPEC, headers=caller.headers).json()
    give_model(db_url, job["id"], model)
    r = client.post("/v1/models", json={"name": name, "job_id": job["id"]}, headers=caller.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def _worse(trained: TrainedModel) -> TrainedModel:
    """The trained model with its last layer's weights zeroed: one class for every image."""
    import torch

    from cnnlab.engine.checkpoints import dumps, loads

    ckpt = loads(trained.checkpoint)
    state = ckpt["model_state"]
    last = [k for k in state if k.endswith("weight")][-1]
    state[last] = torch.zeros_like(state[last])
    bias = last.replace("weight", "bias")
    if bias in state:
        state[bias] = torch.zeros_like(state[bias])
        state[bias][0] = 1.0
    return TrainedModel(dumps(ckpt), trained.spec)


def _run(resource: dict[str, Any]) -> None:
    run_job(resource["id"], "test/1")


@pytest.fixture
def model(client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel) -> str:
    _register(client, alice, db_url, trained, "digits")
    return "digits"


def test_an_evaluation_equals_a_direct_computation(
    client: ApiClient, alice: Caller, model: str, trained: TrainedModel
) -> None:
    from cnnlab.engine.checkpoints import loads
    from cnnlab.engine.training import confusion_on_test

    r = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": "mnist"},
        headers=alice.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["kind"] == "evaluate"
    _run(r.json())
    got = client.get(f"/v1/evaluations/{r.json()['id']}", headers=alice.headers).json()
    assert got["status"] == "succeeded", got
    result = got["result"]
    matrix = confusion_on_test(loads(trained.checkpoint)).numpy()
    assert result["confusion"]["matrix"] == matrix.tolist()
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    names = result["confusion"]["class_names"]
    for i, name in enumerate(names):
        predicted = matrix[:, i].sum()
        precision = matrix[i, i] / predicted if predicted else 0.0
        assert result["per_class"][name]["precision"] == pytest.approx(precision)
        assert result["per_class"][name]["support"] == matrix[i].sum()
    assert 0.0 <= result["ece"] <= 1.0
    assert got["environment"]["torch"] and got["environment"]["dataset"]["name"] == "mnist"
    assert all("png" not in m for m in result["mistakes"])
    for picture in ("reliability.png", "mistakes.png"):
        png = client.get(f"/v1/evaluations/{got['id']}/{picture}", headers=alice.headers)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    listed = client.get(f"/v1/models/{model}/evaluations", headers=alice.headers).json()
    assert listed["by_version"] == {"1": [got["id"]]}


def test_a_worse_challenger_is_called_worse(
    client: ApiClient, alice: Caller, model: str, db_url: str, trained: TrainedModel
) -> None:
    assert _register(client, alice, db_url, _worse(trained), model) == 2
    assert (
        client.request(
            "PUT",
            f"/v1/models/{model}/aliases/production",
            json={"version": 1},
            headers=alice.headers,
        ).status_code
        == 200
    )
    body = {"a": "production", "b": 2, "dataset": "mnist"}
    r = client.post(f"/v1/models/{model}/comparisons", json=body, headers=alice.headers)
    assert r.status_code == 202, r.text
    _run(r.json())
    got = client.get(f"/v1/comparisons/{r.json()['id']}", headers=alice.headers).json()
    result = got["result"]
    assert got["status"] == "succeeded", got
    assert result["a"]["accuracy"] > result["b"]["accuracy"]
    assert result["verdict"] == "b is worse"
    assert result["mcnemar"]["p_value"] < 0.05
    assert result["mcnemar"]["a_only"] > result["mcnemar"]["b_only"]
    assert result["disagreement_count"] == result["mcnemar"]["a_only"] + result["mcnemar"]["b_only"]
    assert set(result["per_class"]) == set(result["a"]["per_class"])


def test_a_model_compared_with_itself_shows_no_difference(
    client: ApiClient, alice: Caller, model: str
) -> None:
    body = {"a": 1, "b": 1, "dataset": "mnist"}
    r = client.post(f"/v1/models/{model}/comparisons", json=body, headers=alice.headers)
    _run(r.json())
    result = client.get(f"/v1/comparisons/{r.json()['id']}", headers=alice.headers).json()["result"]
    assert result["verdict"] == "no evidence of a difference"
    assert result["mcnemar"]["p_value"] == 1.0 and result["disagreements"] == []


@pytest.mark.parametrize(
    ("dataset", "words"),
    [("cifar10", "3×32×32"), ("fashion_mnist", "T-shirt/top")],
)
def test_data_that_does_not_fit_the_signature_is_refused(
    client: ApiClient, alice: Caller, model: str, dataset: str, words: str
) -> None:
    r = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": dataset},
        headers=alice.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["type"] == "signature_mismatch"
    assert words in r.json()["detail"]["message"]
    version = client.get(f"/v1/models/{model}/versions/1", headers=alice.headers).json()
    assert version["signature"]["input"]["channels"] == 1
    assert version["signature"]["class_names"][0] == "0"


def _archive(n: int, bad: bool = True) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            png = io.BytesIO()
            size = 28 if i % 2 else 40  # resized to the model's input
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(png, "PNG")
            zf.writestr(f"images/{i:03d}.png", png.getvalue())
        if bad:
            zf.writestr("images/notes.txt", b"not an image")
    return buf.getvalue()


def _post_archive(client: ApiClient, caller: Caller, name: str, data: bytes) -> Any:
    headers = {**caller.headers, "Content-Type": "application/zip"}
    return client.post(
        f"/v1/models/{name}/batch-predictions?version=1&top_k=3", content=data, headers=headers
    )


def test_a_batch_prediction_of_an_archive_lists_bad_files(
    client: ApiClient, alice: Caller, model: str
) -> None:
    r = _post_archive(client, alice, model, _archive(10))
    assert r.status_code == 202, r.text
    _run(r.json())
    got = client.get(f"/v1/batch-predictions/{r.json()['id']}", headers=alice.headers).json()
    assert got["status"] == "succeeded", got
    assert got["result"]["count"] == 11 and got["result"]["skipped"] == 1
    assert got["progress"] == {"done": 11, "skipped": 1}
    text = client.get(f"/v1/batch-predictions/{got['id']}/results.csv", headers=alice.headers).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["file"] for row in rows][:2] == ["images/000.png", "images/001.png"]
    assert rows[-1]["file"] == "images/notes.txt" and "decode" in rows[-1]["error"]
    assert all(row["class"] and float(row["probability"]) > 0 for row in rows[:-1])
    lines = client.get(f"/v1/batch-predictions/{got['id']}/results.jsonl", headers=alice.headers)
    first = json.loads(lines.text.splitlines()[0])
    assert len(first["top_k"]) == 3 and first["top_k"][0][0] == first["class"]


def test_a_batch_prediction_of_a_dataset(client: ApiClient, alice: Caller, model: str) -> None:
    r = client.post(
        f"/v1/models/{model}/batch-predictions", json={"dataset": "mnist"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text
    _run(r.json())
    got = client.get(f"/v1/batch-predictions/{r.json()['id']}", headers=alice.headers).json()
    assert got["result"]["count"] == 50 and got["result"]["skipped"] == 0


def test_a_batch_resumed_by_a_new_attempt_writes_no_row_twice(
    client: ApiClient, alice: Caller, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab import lifecycle
    from cnnlab.settings import get_settings

    monkeypatch.setenv("CNNLAB_BATCH_CHUNK", "4")
    get_settings.cache_clear()
    job_id = _post_archive(client, alice, model, _archive(10, bad=False)).json()["id"]
    # A first attempt wrote one chunk, then its worker died (its lease ran out).
    with session_scope() as s:
        claim = lifecycle.claim(s, job_id, "dead/1")
    assert claim is not None and claim.kind == "batch_predict"
    rows = [{"index": i, "file": f"images/{i:03d}.png", "class_name": "x"} for i in range(4)]
    with session_scope() as s:
        assert lifecycle.record_batch_rows(s, job_id, claim.attempt, rows)
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    run_job(job_id, "test/2")
    with session_scope() as s:
        indices = list(
            s.scalars(select(BatchPredictionRow.index).where(BatchPredictionRow.job_id == job_id))
        )
        job = s.get(Job, job_id)
        assert job is not None and job.attempts == 2 and job.status == "succeeded"
    assert sorted(indices) == list(range(10))
    # The first attempt, come back, finds its writes refused.
    with session_scope() as s:
        assert not lifecycle.record_batch_rows(
            s, job_id, claim.attempt, [{"index": 99, "file": "x"}]
        )


def test_a_queued_batch_prediction_is_cancelled(
    client: ApiClient, alice: Caller, model: str
) -> None:
    job_id = _post_archive(client, alice, model, _archive(2)).json()["id"]
    r = client.post(f"/v1/batch-predictions/{job_id}/cancel", headers=alice.headers)
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert (
        client.get(f"/v1/batch-predictions/{job_id}/results.csv", headers=alice.headers).status_code
        == 409
    )


def test_not_an_archive_is_refused(client: ApiClient, alice: Caller, model: str) -> None:
    r = _post_archive(client, alice, model, b"hello, not a zip")
    assert r.status_code == 422 and r.json()["detail"]["type"] == "invalid_archive"


def test_a_hostile_archive_refuses_the_batch(client: ApiClient, alice: Caller, model: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/000.png", _archive(1, bad=False))
        zf.writestr("../../etc/cron.d/x.png", b"x")
    r = _post_archive(client, alice, model, buf.getvalue())
    assert r.status_code == 422 and r.json()["detail"]["type"] == "invalid_archive"
    assert "climbs out" in r.json()["detail"]["message"]


def test_evaluations_are_not_listed_as_training_jobs(
    client: ApiClient, alice: Caller, model: str
) -> None:
    r = client.post(
        f"/v1/models/{model}/evaluations", json={"dataset": "mnist"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text  # no alias set: production is missing
    ids = [j["id"] for j in client.get("/v1/jobs", headers=alice.headers).json()["items"]]
    assert r.json()["id"] not in ids
    listed = client.get("/v1/jobs?kind=evaluate", headers=alice.headers).json()["items"]
    assert [j["id"] for j in listed] == [r.json()["id"]]


def test_every_new_route_is_404_across_tenants(
    client: ApiClient, alice: Caller, bob: Caller, model: str
) -> None:
    ev = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": "mnist"},
        headers=alice.headers,
    ).json()
    cmp = client.post(
        f"/v1/models/{model}/comparisons",
        json={"a": 1, "b": 1, "dataset": "mnist"},
        headers=alice.headers,
    ).json()
    bp = client.post(
        f"/v1/models/{model}/batch-predictions?version=1",
        json={"dataset": "mnist"},
        headers=alice.headers,
    ).json()
    h = bob.headers
    gets = [
        f"/v1/evaluations/{ev['id']}",
        f"/v1/evaluations/{ev['id']}/reliability.png",
        f"/v1/evaluations/{ev['id']}/mistakes.png",
        f"/v1/comparisons/{cmp['id']}",
        f"/v1/batch-predictions/{bp['id']}",
        f"/v1/batch-predictions/{bp['id']}/results.csv",
        f"/v1/batch-predictions/{bp['id']}/results.jsonl",
        f"/v1/models/{model}/evaluations",
        f"/v1/models/{model}/comparisons",
        # one kind's id is not another's
        f"/v1/comparisons/{ev['id']}",
    ]
    for path in gets:
        assert client.get(path, headers=h).status_code == 404, path
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/models/{model}/evaluations", {"version": 1, "dataset": "mnist"}),
        (f"/v1/models/{model}/comparisons", {"a": 1, "b": 1, "dataset": "mnist"}),
        (f"/v1/models/{model}/batch-predictions?version=1", {"dataset": "mnist"}),
        (f"/v1/evaluations/{ev['id']}/cancel", {}),
        (f"/v1/comparisons/{cmp['id']}/cancel", {}),
        (f"/v1/batch-predictions/{bp['id']}/cancel", {}),
    ]
    for path, body in posts:
        assert client.post(path, json=body, headers=h).status_code == 404, path
    assert (
        client.get(f"/v1/evaluations/{ev['id']}", headers=alice.headers).json()["status"]
        == "queued"
    )


def test_a_jobs_mistakes_picture_and_report(
    client: ApiClient, alice: Caller, job_id: str, db_url: str
) -> None:
    import torch

    from cnnlab.engine.evaluation import png_base64

    path = f"/v1/jobs/{job_id}/mistakes.png"
    assert client.get(path, headers=alice.headers).status_code == 409
    mistake = {"index": 3, "true": "7", "predicted": "1", "confidence": 0.9}
    pixels = png_base64(torch.zeros((1, 28, 28), dtype=torch.uint8))
    result = {"validation": {"accuracy": 0.5, "mistakes": [{**mistake, "png": pixels}]}}
    with session_scope(db_url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(result=result))
    png = client.get(path, headers=alice.headers)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    shown = client.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()
    assert shown["result"]["validation"]["mistakes"] == [mistake]
    assert client.get(path, headers=Caller(alice.user, "nope").headers).status_code == 401


def _alias_version(client: ApiClient, caller: Caller, name: str, alias: str) -> int:
    return int(client.get(f"/v1/models/{name}", headers=caller.headers).json()["aliases"][alias])


def test_promote_if_better_moves_the_alias_only_for_a_better_challenger(
    client: ApiClient, alice: Caller, model: str, db_url: str, trained: TrainedModel
) -> None:
    from cnnlab import lifecycle

    worse = _register(client, alice, db_url, _worse(trained), model)
    better = _register(client, alice, db_url, trained, model)
    client.request(
        "PUT", f"/v1/models/{model}/aliases/production", json={"version": 1}, headers=alice.headers
    )
    for challenger in (worse, better):
        # as a search with register_best_as {"promote_if_better": true} queues it
        with session_scope(db_url) as s:
            job = lifecycle.submit_comparison(
                s, alice.user.id, model, {"alias": "production"}, {"version": challenger},
                "mnist", enqueue=None, promote="production",
            )  # fmt: skip
            job_id = job.id
        run_job(job_id, "test/1")
        result = client.get(f"/v1/comparisons/{job_id}", headers=alice.headers).json()["result"]
        if challenger == worse:
            assert (result["verdict"], result["promoted"]) == ("b is worse", False)
            assert _alias_version(client, alice, model, "production") == 1
    # The better challenger here has the same weights as version 1: no evidence, no move.
    assert (result["verdict"], result["promoted"]) == ("no evidence of a difference", False)
    client.request(
        "PUT",
        f"/v1/models/{model}/aliases/production",
        json={"version": worse},
        headers=alice.headers,
    )
    with session_scope(db_url) as s:
        job_id = lifecycle.submit_comparison(
            s, alice.user.id, model, {"alias": "production"}, {"version": better}, "mnist",
            enqueue=None, promote="production",
        ).id  # fmt: skip
    run_job(job_id, "test/1")
    result = client.get(f"/v1/comparisons/{job_id}", headers=alice.headers).json()["result"]
    assert (result["verdict"], result["promoted"]) == ("b is better", True)
    assert _alias_version(client, alice, model, "production") == better


def test_an_archive_larger_than_the_apps_body_limit_is_taken(
    client: ApiClient, alice: Caller, model: str
) -> None:
    data = _archive(400)
    assert len(data) > 256 * 1024  # CNNLAB_MAX_BODY_BYTES's default
    r = _post_archive(client, alice, model, data)
    assert r.status_code == 202, r.text
    assert r.json()["spec"]["archive_bytes"] == len(data)


def test_a_comparisons_progress_is_written_as_it_runs_and_streamed(
    client: ApiClient, alice: Caller, bob: Caller, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab import lifecycle
    from worker import scoring

    written: list[tuple[int, int]] = []
    record = lifecycle.record_progress

    def spy(session: Any, job_id: str, attempt: int, done: int, total: int, *a: Any) -> bool:
        written.append((done, total))
        return record(session, job_id, attempt, done, total, *a)

    monkeypatch.setattr(lifecycle, "record_progress", spy)
    monkeypatch.setattr(scoring, "PROGRESS_S", 0.0)
    body = {"a": 1, "b": 1, "dataset": "mnist"}
    job = client.post(f"/v1/models/{model}/comparisons", json=body, headers=alice.headers).json()
    assert job["progress"] is None
    _run(job)
    # Each model's images (50 in the test split), the first model's done half-way.
    assert written == [(50, 100), (100, 100)]
    got = client.get(f"/v1/comparisons/{job['id']}", headers=alice.headers).json()
    assert got["progress"] == {"done": 100, "total": 100}
    r = client.get(f"/v1/comparisons/{job['id']}/events", headers=alice.headers)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert [e["event"] for e in events] == ["progress", "status"]
    progress, status = (e["data"] for e in events)
    assert progress == {"done": 100, "total": 100} and status["status"] == "succeeded"
    assert client.get(f"/v1/comparisons/{job['id']}/events", headers=bob.headers).status_code == 404
    evaluation = f"/v1/evaluations/{job['id']}/events"  # a comparison is not an evaluation
    assert client.get(evaluation, headers=alice.headers).status_code == 404


def test_an_evaluations_progress_events_follow_its_writes() -> None:
    from api.routes.events import Position, scoring_frames

    running = {"status": "running", "progress": {"done": 1000, "total": 3000}}
    frames, position = scoring_frames(running, Position())
    assert [f.split("\n")[1] for f in frames] == ["event: status", "event: progress"]
    assert scoring_frames(running, position)[0] == []  # nothing new
    later = {**running, "progress": {"done": 2000, "total": 3000}}
    frames, position = scoring_frames(later, position)
    assert len(frames) == 1 and '"done": 2000' in frames[0] and position.id == "2000-running"


def _uploaded(
    client: ApiClient, caller: Caller, tmp_path: Path, names: tuple[str, ...], name: str = "parts"
) -> dict[str, Any]:
    """A ready upload of real images in class folders ``names``, 28×28 like the model's input."""
    from tests.utils.image_archives import make_zip, write_class_folders
    from worker.datasets import run_ingest

    folder = write_class_folders(tmp_path / name, per_class=10, classes=range(3), names=names)
    archive = make_zip(folder)
    with zipfile.ZipFile(archive, "a") as zf:
        # Bytes of its own: a zip stamps times to 2 s, and the version is found by checksum.
        zf.comment = uuid.uuid4().hex.encode()
    r = client.post(
        "/v1/datasets",
        params={"name": name, "image_size": 28},
        content=archive.read_bytes(),
        headers={**caller.headers, "Content-Type": "application/zip"},
    )
    assert r.status_code == 202, r.text
    with session_scope() as s:
        from cnnlab.store.tables import DatasetVersion

        version_id = s.scalars(
            select(DatasetVersion.id).where(DatasetVersion.checksum == r.json()["checksum"])
        ).first()
    assert version_id is not None
    run_ingest(version_id, "w/1")
    got = client.get(f"/v1/datasets/{name}/versions/1", headers=caller.headers).json()
    assert got["status"] == "ready", got
    return dict(got)


def test_an_uploaded_versions_test_split_is_evaluated_compared_and_predicted(
    client: ApiClient, alice: Caller, bob: Caller, model: str, tmp_path: Path
) -> None:
    version = _uploaded(client, alice, tmp_path, ("0", "1", "2"))  # a subset of the digits
    tested = int(version["counts"]["test"])
    assert tested > 0
    r = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": "parts"},
        headers=alice.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["spec"]["dataset"] == "parts@1"  # pinned at submit
    _run(r.json())
    got = client.get(f"/v1/evaluations/{r.json()['id']}", headers=alice.headers).json()
    assert got["status"] == "succeeded", got
    assert got["result"]["count"] == tested and got["result"]["dataset"] == "parts@1"
    assert got["progress"] == {"done": tested, "total": tested}
    assert sum(map(sum, got["result"]["confusion"]["matrix"])) == tested
    body = {"a": 1, "b": 1, "dataset": "parts@1"}
    r = client.post(f"/v1/models/{model}/comparisons", json=body, headers=alice.headers)
    assert r.status_code == 202, r.text
    _run(r.json())
    got = client.get(f"/v1/comparisons/{r.json()['id']}", headers=alice.headers).json()
    assert got["status"] == "succeeded" and got["result"]["a"]["count"] == tested, got
    r = client.post(
        f"/v1/models/{model}/batch-predictions", json={"dataset": "parts"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text
    _run(r.json())
    got = client.get(f"/v1/batch-predictions/{r.json()['id']}", headers=alice.headers).json()
    assert got["status"] == "succeeded" and got["result"]["count"] == tested, got
    # Bob has no dataset of that name: his model is not even asked.
    r = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": "parts"},
        headers=bob.headers,
    )
    assert r.status_code == 404  # Alice's model and Alice's dataset: neither is his


def test_an_upload_whose_classes_the_model_lacks_is_refused_naming_them(
    client: ApiClient, alice: Caller, model: str, tmp_path: Path
) -> None:
    _uploaded(client, alice, tmp_path, ("0", "cat", "dog"), name="pets")
    for path, body in (
        ("evaluations", {"version": 1, "dataset": "pets"}),
        ("comparisons", {"a": 1, "b": 1, "dataset": "pets@1"}),
    ):
        r = client.post(f"/v1/models/{model}/{path}", json=body, headers=alice.headers)
        assert r.status_code == 422, r.text
        assert "cat" in r.json()["detail"]["message"] and "dog" in r.json()["detail"]["message"]
    r = client.post(
        f"/v1/models/{model}/evaluations",
        json={"version": 1, "dataset": "pets@2"},
        headers=alice.headers,
    )
    assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset"


def test_another_users_upload_is_not_found_for_scoring(
    client: ApiClient, alice: Caller, bob: Caller, model: str, db_url: str,
    trained: TrainedModel, tmp_path: Path,
) -> None:  # fmt: skip
    _uploaded(client, alice, tmp_path, ("0", "1", "2"))
    _register(client, bob, db_url, trained, "bobs")  # Bob's own model, Alice's dataset's name
    r = client.post(
        "/v1/models/bobs/evaluations", json={"version": 1, "dataset": "parts"}, headers=bob.headers
    )
    assert r.status_code == 422 and r.json()["detail"]["field"] == "dataset", r.text
    assert "unknown dataset" in r.json()["detail"]["message"]


def test_a_batch_archive_counts_in_storage_until_its_job_ends(
    client: ApiClient, alice: Caller, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.main import create_app
    from cnnlab.settings import get_settings
    from cnnlab.store.tables import Blob, JobInput

    buf = io.BytesIO(_archive(10, bad=False))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = uuid.uuid4().hex.encode()  # bytes of its own: blobs are shared by content
    data = buf.getvalue()
    checksum = hashlib.sha256(data).hexdigest()

    def storage(c: ApiClient) -> dict[str, Any]:
        return dict(c.get("/v1/me", headers=alice.headers).json()["storage"])

    def stored() -> tuple[int, int]:
        """The archive's inputs and blobs."""
        with session_scope() as s:
            inputs = s.scalars(select(JobInput.job_id).where(JobInput.checksum == checksum))
            blobs = s.scalars(select(Blob.checksum).where(Blob.checksum == checksum))
            return len(list(inputs)), len(list(blobs))

    used = storage(client)["used_bytes"]
    monkeypatch.setenv("CNNLAB_MAX_STORAGE_BYTES", str(used + len(data) + 100))
    get_settings.cache_clear()
    with ApiClient(create_app()) as limited:
        first = _post_archive(limited, alice, model, data)
        assert first.status_code == 202, first.text
        assert storage(limited)["input_bytes"] == len(data)
        assert storage(limited)["used_bytes"] == used + len(data)
        assert stored() == (1, 1)
        full = _post_archive(limited, alice, model, data)
        assert full.status_code == 422 and full.json()["detail"]["type"] == "storage_quota"
        assert stored() == (1, 1)  # the refused one left nothing
        cancel = limited.post(
            f"/v1/batch-predictions/{first.json()['id']}/cancel", headers=alice.headers
        )
        assert cancel.status_code == 202 and cancel.json()["status"] == "cancelled"
        assert stored() == (0, 0) and storage(limited)["used_bytes"] == used
        second = _post_archive(limited, alice, model, data)
        assert second.status_code == 202, second.text
        _run(second.json())
        got = limited.get(f"/v1/batch-predictions/{second.json()['id']}", headers=alice.headers)
        assert got.json()["status"] == "succeeded" and got.json()["result"]["count"] == 10
        assert stored() == (0, 0) and storage(limited)["input_bytes"] == 0
