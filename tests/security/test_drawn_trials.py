"""A TPE search's later trials pass the check a job passes, as an attacker would probe it: the
draws are deterministic, so a seed whose planned trials are small and whose third draw is a model
past the server's limits can be found offline with the same functions the server draws with. The
search is accepted (its planned trials are fine), the two planned trials train in this process as
a worker would train them, and the third trial, drawn from their scores, is failed with
``budget_exceeded`` and never trains. The worker refuses such a spec too, whatever queued it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnlab.search.sampling import Past, draw, plan
from cnnlab.search.space import parse_space
from cnnlab.settings import get_settings
from cnnlab.store.db import session_scope
from cnnlab.store.tables import EpochMetric, Job, JobStatus
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient
from tests.utils.factories import submit
from worker.tasks import run_job

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

BASE: dict[str, Any] = {"dataset": "mnist", "val_size": 50, "batch_size": 50, "epochs": 1}
BIG = [1024]  # about 2 million parameters on MNIST: past the lowered limit below
SPACE = {"model.channels": {"choice": [[4], [6], [8], BIG]}}
MAX_PARAMS = "100000"  # [8] has about 16 thousand


def attacker_seed() -> int:
    """A seed whose three planned trials are small and whose third trial is ``BIG`` when TPE
    draws it for real, from the first two trials' scores (whichever scores higher)."""
    space = parse_space(SPACE, BASE)
    for seed in range(1000):
        planned = plan(space, sampler="tpe", seed=seed, num_trials=3)
        if any(p["model.channels"] == BIG for p in planned):
            continue
        draws = [
            draw(
                space,
                sampler="tpe",
                seed=seed,
                index=2,
                num_trials=3,
                history=[
                    Past(planned[0], value=first, curve=[first]),
                    Past(planned[1], value=second, curve=[second]),
                ],
            )
            for first, second in [(0.2, 0.8), (0.8, 0.2), (0.5, 0.5)]
        ]
        if all(d["model.channels"] == BIG for d in draws):
            return seed
    raise AssertionError("no seed found")


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_MAX_MODEL_PARAMS", MAX_PARAMS)
    get_settings.cache_clear()


def _trials(search_id: str) -> list[Job]:
    with session_scope() as s:
        found = list(s.query(Job).filter_by(search_id=search_id).order_by(Job.trial_index))
        s.expunge_all()
        return found


def _epochs(job_id: str) -> int:
    with session_scope() as s:
        return s.query(EpochMetric).filter_by(job_id=job_id).count()


def test_a_large_third_draw_is_a_failed_trial_that_never_trains(
    lowered: None, client: ApiClient, alice: Caller, mnist: Path
) -> None:
    seed = attacker_seed()
    big_job = {**BASE, "model": {"channels": BIG}}
    refused = client.post("/v1/jobs", json=big_job, headers=alice.headers)
    assert refused.status_code == 422 and refused.json()["detail"]["type"] == "budget_exceeded"

    body = {
        "base": BASE,
        "space": SPACE,
        "sampler": "tpe",
        "seed": seed,
        "num_trials": 3,
        "max_concurrent_trials": 1,
    }
    r = client.post("/v1/searches", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    search_id = r.json()["id"]
    # Play the worker: each trial trains here, then the worker draws the next one.
    assert run_job(_trials(search_id)[0].id, "test/1") is JobStatus.succeeded
    assert run_job(_trials(search_id)[1].id, "test/1") is JobStatus.succeeded

    third = _trials(search_id)[2]
    assert third.params == {"model.channels": BIG}
    assert third.status is JobStatus.failed and third.attempts == 0
    assert third.error is not None and third.error["type"] == "budget_exceeded"
    assert third.error["field"] == "space.model.channels"
    assert _epochs(third.id) == 0
    assert run_job(third.id, "test/1") is None  # ended: no worker can claim it
    search = client.get(f"/v1/searches/{search_id}", headers=alice.headers).json()
    assert search["status"] == "succeeded" and search["num_trials"] == 3
    assert search["trials"][2]["error_type"] == "budget_exceeded"


def test_the_worker_refuses_a_queued_spec_past_the_limits(
    client: ApiClient, alice: Caller, mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Queued while the limits allowed it; lowered before a worker took it.
    job_id = submit({**BASE, "model": {"channels": [8]}}, user=alice.user.name)
    monkeypatch.setenv("CNNLAB_MAX_MODEL_PARAMS", "10000")
    get_settings.cache_clear()
    assert run_job(job_id, "test/1") is JobStatus.failed
    job = client.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()
    assert job["error"]["type"] == "budget_exceeded" and job["error"]["field"] == "model.channels"
    assert job["epoch"] == 0 and _epochs(job_id) == 0
