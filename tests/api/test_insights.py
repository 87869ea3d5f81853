"""The confusion matrix is computed once per job and checkpoint; later requests are cache hits."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab import lifecycle
from cnnlab.store.db import session_scope
from cnnlab.store.tables import JobStatus
from tests.api.conftest import SPEC, Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient


@pytest.fixture
def succeeded_id(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> str:
    """Alice's job, succeeded after one epoch with the trained model."""
    job_id = str(client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"])
    give_model(db_url, job_id, trained)
    with session_scope(db_url) as s:
        lifecycle.finish_job(s, job_id, JobStatus.succeeded)
    return job_id


def test_confusion_is_computed_once_then_cached(
    client: ApiClient, alice: Caller, succeeded_id: str
) -> None:
    job_id = succeeded_id
    url = f"/v1/jobs/{job_id}/confusion"

    first = client.get(url, headers=alice.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["count"] == sum(map(sum, body["matrix"])) == 50 and body["epoch"] == 1
    cache = client.app.state.confusion_cache
    assert (cache.hits, len(cache)) == (0, 1)  # looked up twice: before and behind the gate
    misses = cache.misses

    assert client.get(url, headers=alice.headers).json() == body
    assert (cache.hits, cache.misses, len(cache)) == (1, misses, 1)


def test_requests_at_once_evaluate_the_model_once(
    client: ApiClient, alice: Caller, succeeded_id: str
) -> None:
    import asyncio

    import httpx

    job_id = succeeded_id

    async def four_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cnnlab") as http:
            url = f"/v1/jobs/{job_id}/confusion"
            return await asyncio.gather(*(http.get(url, headers=alice.headers) for _ in range(4)))

    answers = asyncio.run(four_at_once())
    assert [r.status_code for r in answers] == [200] * 4
    assert all(r.json() == answers[0].json() for r in answers)
    # Each of the three others found the one matrix computed (before or behind the gate).
    cache = client.app.state.confusion_cache
    assert cache.hits == 3 and len(cache) == 1
