"""Bodies are limited by route and read only for a caller with a valid token: the JSON body limit
exempts the two predict routes (they limit their own uploads) by the route a request matches,
and a /v1 request without a valid token is refused before any of its body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.main import create_app
from api.prediction.limits import OWN_BODY_ROUTES, reads_own_body
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

MIB = 1024 * 1024


class Body:
    """A chunked request body (no Content-Length) that counts what the server read of it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # A JSON document of the given size: a long string.
        yield b'{"version": 1, "pad": "'
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"x" * self.chunk
        yield b'"}'


@pytest.fixture
def client(db_url: str) -> ApiClient:
    return ApiClient(create_app())


def test_a_path_ending_in_predict_is_not_exempt_from_the_body_limit(
    client: ApiClient, alice: Caller
) -> None:
    # Before: any path ending in /predict skipped the limit: a 64 MB alias update was parsed in
    # full (+300 MB of API memory for two), then answered 401.
    with client:
        body = Body(64 * MIB)
        r = client.request(
            "PUT", "/v1/models/x/aliases/predict", content=body, headers=alice.headers
        )
        assert r.status_code == 413, r.text
        assert r.json()["detail"]["limit_name"] == "request"
        assert body.sent <= 512 * 1024  # read up to the limit (256 kB), not 64 MB
        declared = client.request(
            "PUT",
            "/v1/models/x/aliases/predict",
            content=b"{" + b" " * (1 * MIB) + b"}",
            headers={**alice.headers, "Content-Type": "application/json"},
        )
        assert declared.status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/models/x/aliases/predict"),
        ("POST", "/v1/jobs"),
        ("POST", "/v1/models/x/predict"),
        ("POST", "/v1/jobs/abc/predict"),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_no_body_is_read(
    client: ApiClient, method: str, path: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with client:
        body = Body(64 * MIB)
        r = client.request(method, path, content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["detail"]["type"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert body.sent == 0


def test_the_predict_routes_are_exempt_by_route(client: ApiClient) -> None:
    paths = client.app.openapi()["paths"]
    for method, template in OWN_BODY_ROUTES:  # each a real route
        assert method.lower() in paths[template], (method, template)
    assert reads_own_body("POST", "/v1/jobs/abc/predict")
    assert reads_own_body("POST", "/v1/models/m/predict")
    assert not reads_own_body("PUT", "/v1/models/m/aliases/predict")
    assert not reads_own_body("GET", "/v1/models/m/predict")  # the route's method only
    assert not reads_own_body("POST", "/v1/models/x/aliases/predict")
    assert not reads_own_body("POST", "/v1/jobs/abc/predict/extra")
    assert not reads_own_body("POST", "/v1/jobs")
