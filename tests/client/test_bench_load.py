"""The benchmark's lean HTTP client reads the real service's answers as httpx does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bench import load
from cnnlab.testing.stack import Stack


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_requests_on_one_connection_read_whole_answers(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    path = f"/v1/jobs/{finished_job['id']}"
    raw = load.build(stack.url, path, headers=_auth(token))
    expected = httpx.get(stack.url + path, headers=_auth(token)).json()
    with load.Connection(stack.url) as conn:
        answers = [conn.request(raw) for _ in range(3)]  # kept alive between requests
    assert [status for status, _ in answers] == [200] * 3
    assert all(json.loads(body) == expected for _, body in answers)


def test_a_prediction_body_goes_out_whole(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    path = f"/v1/jobs/{finished_job['id']}/predict"
    body = json.dumps({"instances": [[[7] * 28] * 28] * 3}).encode()
    raw = load.build(
        stack.url,
        path,
        method="POST",
        headers=_auth(token),
        body=body,
        content_type="application/json",
    )
    headers = {**_auth(token), "Content-Type": "application/json"}
    expected = httpx.post(stack.url + path, headers=headers, content=body, timeout=60).json()
    with load.Connection(stack.url) as conn:
        status, answer = conn.request(raw)
    assert status == 200
    assert json.loads(answer) == expected
    assert len(expected["predictions"]) == 3


def test_the_benchmark_predicts_by_model_name_as_by_job_id(
    stack: Stack, token: str, finished_job: dict[str, Any]
) -> None:
    from bench import service

    bench_service = service.Service(stack, token)
    registered = httpx.post(
        stack.url + "/v1/models",
        headers=_auth(token),
        json={"name": "bench-load", "job_id": finished_job["id"]},
        timeout=60,
    )
    assert registered.status_code == 201, registered.text
    instances = {"instances": [[[7] * 28] * 28] * 2}
    answers = []
    for path in (f"/v1/jobs/{finished_job['id']}/predict", "/v1/models/bench-load/predict"):
        raw = service._predict_request(bench_service, path, json=instances)
        with load.Connection(stack.url) as conn:
            status, answer = conn.request(raw)
        assert status == 200
        answers.append(json.loads(answer)["predictions"])
    assert answers[0] == answers[1]


def test_figures_refuse_answers_other_than_200(stack: Stack, finished_job: dict[str, Any]) -> None:
    raw = load.build(stack.url, f"/v1/jobs/{finished_job['id']}", headers=_auth("cnl_wrong"))
    with pytest.raises(load.HttpError, match="answered 401"):
        load.latencies(stack.url, raw, n=1, warmup=0)
    with pytest.raises(load.HttpError, match="answered 401"):
        load.requests_per_second(stack.url, raw, connections=2, seconds=0.2)


def test_requests_per_second_counts_answered_requests(stack: Stack) -> None:
    rate = load.requests_per_second(
        stack.url, load.build(stack.url, "/healthz"), connections=2, seconds=0.5
    )
    assert rate > 10
