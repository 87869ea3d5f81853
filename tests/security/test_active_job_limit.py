"""A user may have at most ``CNNLAB_MAX_ACTIVE_JOBS`` jobs queued or running; a search's trials
count. Past it a submission is 429 and nothing is added."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.main import create_app
from api.settings import ApiSettings
from cnnlab.lifecycle.quota import active_jobs
from cnnlab.store.db import session_scope
from tests.api.conftest import Caller, make_caller
from tests.utils.api_client import ApiClient

SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
LIMIT = 3


@pytest.fixture
def limited(db_url: str, mnist: Path) -> Iterator[ApiClient]:
    with ApiClient(create_app(api_settings=ApiSettings(max_active_jobs=LIMIT))) as c:
        yield c


def _submit(client: ApiClient, caller: Caller) -> int:
    return client.post("/v1/jobs", json=SPEC, headers=caller.headers).status_code


def test_past_the_limit_a_job_is_429_and_not_added(
    limited: ApiClient, alice: Caller, bob: Caller
) -> None:
    assert [_submit(limited, alice) for _ in range(LIMIT)] == [201] * LIMIT
    r = limited.post("/v1/jobs", json=SPEC, headers=alice.headers)
    assert r.status_code == 429, r.text
    detail = r.json()["detail"]
    assert detail["type"] == "too_many_active_jobs"
    assert (detail["active"], detail["requested"], detail["limit"]) == (LIMIT, 1, LIMIT)
    assert "at most 3" in detail["message"] and "cancel" in detail["message"]
    items = limited.get("/v1/jobs", headers=alice.headers).json()["items"]
    assert len(items) == LIMIT
    # Each user has their own allowance.
    assert _submit(limited, bob) == 201


def test_ended_jobs_free_their_place(limited: ApiClient, alice: Caller) -> None:
    ids = [limited.post("/v1/jobs", json=SPEC, headers=alice.headers).json()["id"] for _ in "abc"]
    assert _submit(limited, alice) == 429
    assert limited.post(f"/v1/jobs/{ids[0]}/cancel", headers=alice.headers).status_code == 202
    assert _submit(limited, alice) == 201
    assert _submit(limited, alice) == 429


def test_a_search_counts_its_trials(limited: ApiClient, alice: Caller) -> None:
    too_big = {"base": SPEC, "grid": {"optimizer.lr": [0.01, 0.1, 0.2, 0.3]}}
    r = limited.post("/v1/searches", json=too_big, headers=alice.headers)
    assert r.status_code == 429, r.text
    assert r.json()["detail"]["requested"] == 4
    assert limited.get("/v1/searches", headers=alice.headers).json()["items"] == []

    fits = {"base": SPEC, "grid": {"optimizer.lr": [0.01, 0.1]}}
    r = limited.post("/v1/searches", json=fits, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert _submit(limited, alice) == 201
    assert _submit(limited, alice) == 429
    # Cancelling the search frees both of its places.
    search_id = r.json()["id"]
    limited.post(f"/v1/searches/{search_id}/cancel", headers=alice.headers)
    assert [_submit(limited, alice) for _ in range(3)] == [201, 201, 429]


def test_simultaneous_submissions_never_pass_the_limit(
    limited: ApiClient, db_url: str, mnist: Path
) -> None:
    caller = make_caller(db_url)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: _submit(limited, caller), range(12)))
    assert sorted(codes) == [201] * LIMIT + [429] * (12 - LIMIT), codes
    with session_scope(db_url) as s:
        assert active_jobs(s, caller.user.id) == LIMIT


def test_the_default_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ApiSettings().max_active_jobs == 20
    monkeypatch.setenv("CNNLAB_MAX_ACTIVE_JOBS", "5")
    assert ApiSettings().max_active_jobs == 5
