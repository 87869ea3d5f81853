"""``GET /metrics``: Prometheus' text format, read back with prometheus_client's own parser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from api.settings import ApiSettings
from tests.api.conftest import SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient
from tests.utils.datasets import patterned_images


@pytest.fixture
def client(db_url: str) -> Iterator[ApiClient]:
    """The app reading the database at every scrape (no reuse of the last one's figures)."""
    with ApiClient(create_app(api_settings=ApiSettings(ops_cache_seconds=0))) as c:
        yield c


def _samples(client: ApiClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = client.get("/metrics")  # no token needed
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for got, v in samples if all(got.get(k) == w for k, w in labels.items()))


def test_requests_by_route_template_and_status(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    job = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
    for _ in range(3):
        assert client.get(f"/v1/jobs/{job['id']}", headers=alice.headers).status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}", headers=bob.headers).status_code == 404
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/no/such/page").status_code == 404

    samples = _samples(client)
    requests = samples["cnnlab_http_requests_total"]
    one_job = "/v1/jobs/{job_id}"
    assert _value(requests, method="GET", route=one_job, status="200") == 3
    assert _value(requests, method="GET", route=one_job, status="404") == 1
    assert _value(requests, method="POST", route="/v1/jobs", status="201") == 1
    assert _value(requests, method="GET", route="/v1/jobs", status="401") == 1
    # Unknown paths share one series; raw paths (with ids) never appear.
    assert _value(requests, route="unmatched", status="404") == 1
    assert not any(job["id"] in labels["route"] for labels, _ in requests)
    # Latency: a histogram per method and route.
    counts = samples["cnnlab_http_request_duration_seconds_count"]
    assert _value(counts, method="GET", route=one_job) == 4
    buckets = samples["cnnlab_http_request_duration_seconds_bucket"]
    assert _value(buckets, method="GET", route=one_job, le="+Inf") == 4


def test_jobs_by_status_are_read_at_scrape_time(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    # Counted over the whole database (shared by a module's tests on PostgreSQL): differences.
    before = _samples(client)["cnnlab_jobs"]
    ids = [client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"] for _ in "ab"]
    assert client.post(f"/v1/jobs/{ids[0]}/cancel", headers=alice.headers).status_code == 202
    after = _samples(client)["cnnlab_jobs"]
    for status, more in {"queued": 1, "cancelled": 1, "running": 0, "succeeded": 0}.items():
        assert _value(after, status=status) - _value(before, status=status) == more, status
    assert {labels["status"] for labels, _ in after} >= {"queued", "running", "succeeded"}


def test_predictions_are_counted(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
    give_model(db_url, job["id"], trained)
    images = patterned_images(5, (28, 28), seed=1)[0]
    body = {"instances": images.tolist()}
    r = client.post(f"/v1/jobs/{job['id']}/predict", json=body, headers=alice.headers)
    assert r.status_code == 200
    samples = _samples(client)
    assert _value(samples["cnnlab_predictions_total"]) == 5
    assert _value(samples["cnnlab_prediction_duration_seconds_count"]) == 1


def test_queues_workers_and_training_speed_are_read_at_scrape_time(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    from cnnlab import lifecycle
    from cnnlab.store import workers
    from cnnlab.store.db import session_scope
    from tests.utils.factories import metrics, unique_name

    before = _samples(client)
    job_id = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"]
    with session_scope(db_url) as s:
        workers.beat(s, unique_name("worker"), queues=["cpu"], devices=[], version="test")
    after = _samples(client)
    for name, labels, more in [
        ("cnnlab_queued_jobs", {"queue": "cpu"}, 1),
        ("cnnlab_queued_jobs", {"queue": "gpu"}, 0),
        ("cnnlab_workers", {"queue": "cpu"}, 1),
        ("cnnlab_workers", {"queue": "gpu"}, 0),
    ]:
        assert _value(after[name], **labels) - _value(before[name], **labels) == more, name

    with session_scope(db_url) as s:
        assert lifecycle.claim(s, job_id, "w") is not None
    with session_scope(db_url) as s:
        row = {**metrics(1, 0.5), "images_per_second": 1234.0}
        lifecycle.record_epoch(s, job_id, row, b"l", b"b")
    scraped = _samples(client)
    assert _value(scraped["cnnlab_epochs"]) - _value(after["cnnlab_epochs"]) == 1
    assert _value(scraped["cnnlab_recent_images_per_second"], device="cpu") > 0


def test_a_scrape_reads_aggregates_and_no_spec(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str
) -> None:
    # Before: every scrape loaded every queued job's spec.
    from sqlalchemy import event

    from cnnlab.store.db import get_engine

    for _ in range(3):
        client.post("/v1/jobs", json=SPEC, headers=alice.headers)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert _value(_samples(client)["cnnlab_queued_jobs"], queue="cpu") >= 3
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements
    # The spec column itself is never read; its device field is (JSON_EXTRACT, ->>).
    whole_spec = re.compile(r"(?<!\()jobs\.spec\b(?!\s*->)", re.IGNORECASE)
    assert not [s for s in statements if whole_spec.search(s)]


def test_a_flood_of_scrapes_and_probes_costs_one_check_each(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each /metrics and /readyz queried the database, with no limit.
    from api.metrics import ServiceState
    from api.routes import health

    collected = []
    collect = ServiceState.collect
    monkeypatch.setattr(
        ServiceState, "collect", lambda self: (collected.append(1), (yield from collect(self)))
    )
    probed = []
    check = health.check_database
    monkeypatch.setattr(health, "check_database", lambda url: (probed.append(1), check(url)))
    app = create_app(api_settings=ApiSettings(ops_cache_seconds=3600))
    with ApiClient(app) as client:
        for _ in range(50):
            assert client.get("/metrics").status_code == 200
            assert client.get("/readyz").status_code == 200
    assert len(collected) == 1 and len(probed) == 1
