"""The confusion matrix is computed once per job and checkpoint; later requests are cache hits."""

from __future__ import annotations

from pathlib import Path

from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from cnnlab.store.models import JobStatus
from tests.api.conftest import SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient


def test_confusion_is_computed_once_then_cached(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> None:
    job_id = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"]
    give_model(db_url, job_id, trained)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, JobStatus.succeeded)
    url = f"/v1/jobs/{job_id}/confusion"

    first = client.get(url, headers=alice.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["count"] == sum(map(sum, body["matrix"])) == 50 and body["epoch"] == 1
    cache = client.app.state.confusion_cache
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)

    assert client.get(url, headers=alice.headers).json() == body
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
