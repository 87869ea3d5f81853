"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

Requests are generated from the schema (valid and invalid), sent in-process to the real app with
a valid token, and every answer must be a documented status with a body that fits the schema, and
never a 5xx. Jobs it submits stay queued: no worker runs here, and the embedded broker only
stores the messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from api.settings import ApiSettings
from cnnlab.settings import get_settings
from cnnlab.store.db import dispose_engine
from tests.api.conftest import Caller, TrainedModel, give_model
from tests.utils.api_client import ApiClient
from tests.utils.databases import upgraded

# Cases per operation (about 700 requests in all): under a minute on two busy cores.
MAX_EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
VALID_BODIES = {
    "POST /v1/jobs": SPEC,
    "POST /v1/searches": {"base": SPEC, "grid": {"seed": [1, 2]}},
}


@pytest.fixture
def db_url(cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """SQLite only, here: the schema is the same whatever the database. No request limit: the
    generated requests would soon be answered 429 and test nothing else."""
    monkeypatch.setenv("CNNLAB_RATE_LIMIT_PER_MINUTE", "0")
    get_settings.cache_clear()
    url = get_settings().resolved_database_url
    upgraded(url)
    yield url
    dispose_engine(close=True)


@pytest.fixture
def owned(db_url: str, alice: Caller, mnist: Path, trained: TrainedModel) -> dict[str, str]:
    """Alice's job (with a model, so predictions, checkpoints and curves answer) and search."""
    with ApiClient(create_app()) as client:
        job = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
        body = {"base": SPEC, "grid": {"seed": [1, 2]}}
        search = client.post("/v1/searches", json=body, headers=alice.headers).json()
    give_model(db_url, job["id"], trained)
    return {"job_id": job["id"], "search_id": search["id"]}


@pytest.fixture
def api_schema(db_url: str, owned: dict[str, str]) -> Any:
    # A low limit on active jobs, so the 429 path is exercised too.
    app = create_app(api_settings=ApiSettings(max_active_jobs=5))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(api_schema: Any) -> list[Any]:
    ops = [result.ok() for result in api_schema.get_all_operations()]
    # The event stream lasts until its job ends, and no job ends here.
    return [op for op in ops if not op.path.endswith("/events")]


def test_no_5xx_and_every_answer_fits_the_schema(
    api_schema: Any, alice: Caller, owned: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {alice.token}"}
    failures: list[str] = []
    sent = 0

    for operation in _operations(api_schema):
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        # Random ids only ever find nothing; half the cases aim at Alice's real job or search.
        names = {p.name for p in operation.path_parameters}
        if names and names <= owned.keys():
            real = {name: owned[name] for name in names}
            strategies.append(operation.as_strategy(path_parameters=real))
            strategies.append(operation.as_strategy(path_parameters=real))
        # Generated specs name no real dataset; these reach 201 and then the 429 past the limit.
        if operation.label in VALID_BODIES:
            body = VALID_BODIES[operation.label]
            strategies.append(operation.as_strategy(body=body, media_type="application/json"))
        cases = st.one_of(strategies)

        @given(case=cases)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal sent
            sent += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # one operation's failure must not hide another's
            failures.append(f"{operation.label}: {exc}")
    assert sent >= MAX_EXAMPLES
    assert not failures, "\n\n".join(failures)
