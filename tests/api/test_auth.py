"""The 401/404 matrix: every /v1 route needs a live token; another user's resource is a 404
exactly like one that does not exist."""

from __future__ import annotations

from cnnlab.store.db import session_scope
from cnnlab.store.users import revoke_token
from tests.api.conftest import GRID, SPEC, Caller, make_caller
from tests.utils.api_client import ApiClient

PIXELS = {"instances": [[[0] * 28] * 28]}

# (method, path, request kwargs); {job} and {search} are filled with ids.
OWNED = [
    ("GET", "/v1/jobs/{job}", {}),
    ("GET", "/v1/jobs/{job}/metrics", {}),
    ("GET", "/v1/jobs/{job}/checkpoint", {}),
    ("GET", "/v1/jobs/{job}/checkpoint?kind=last", {}),
    ("GET", "/v1/jobs/{job}/curves.png", {}),
    ("POST", "/v1/jobs/{job}/predict", {"json": PIXELS}),
    ("POST", "/v1/jobs/{job}/cancel", {}),
    ("GET", "/v1/searches/{search}", {}),
    ("GET", "/v1/searches/{search}/heatmap.png", {}),
    ("POST", "/v1/searches/{search}/cancel", {}),
    # After the cancel: the cancelled trials give retry something to run again.
    ("POST", "/v1/searches/{search}/pause", {}),
    ("POST", "/v1/searches/{search}/resume", {}),
    ("POST", "/v1/searches/{search}/retry", {}),
    ("GET", "/v1/searches/{search}/trials.csv", {}),
    ("GET", "/v1/jobs/{job}/events", {}),
    ("GET", "/v1/searches/{search}/events", {}),
    ("GET", "/v1/jobs/{job}/samples", {}),
    ("GET", "/v1/jobs/{job}/confusion", {}),
    ("GET", "/v1/models/{model}", {}),
    ("GET", "/v1/models/{model}/versions/{version}", {}),
    ("POST", "/v1/models/{model}/predict", {"json": PIXELS}),
    ("GET", "/v1/models/{model}/versions/{version}/export?format=onnx", {}),
    ("GET", "/v1/models/{model}/versions/{version}/export/metadata", {}),
    ("PUT", "/v1/models/{model}/aliases/{alias}", {"json": {"version": 1}}),
    ("GET", "/v1/webhooks/{webhook}", {}),
    ("GET", "/v1/webhooks/{webhook}/deliveries", {}),
    ("POST", "/v1/webhooks/{webhook}/rotate-secret", {}),
    ("PATCH", "/v1/jobs/{job}", {"json": {"notes": "mine"}}),
    ("GET", "/v1/jobs/{job}/mistakes.png", {}),
    ("GET", "/v1/models/{model}/evaluations", {}),
    ("POST", "/v1/models/{model}/evaluations", {"json": {"version": 1, "dataset": "mnist"}}),
    ("GET", "/v1/models/{model}/comparisons", {}),
    ("POST", "/v1/models/{model}/comparisons", {"json": {"a": 1, "b": 1, "dataset": "mnist"}}),
    ("POST", "/v1/models/{model}/batch-predictions", {"json": {"dataset": "mnist"}}),
    ("GET", "/v1/evaluations/{evaluation}", {}),
    ("GET", "/v1/evaluations/{evaluation}/reliability.png", {}),
    ("GET", "/v1/evaluations/{evaluation}/mistakes.png", {}),
    ("GET", "/v1/evaluations/{evaluation}/events", {}),
    ("GET", "/v1/comparisons/{comparison}/events", {}),
    ("GET", "/v1/batch-predictions/{batch}/events", {}),
    ("POST", "/v1/evaluations/{evaluation}/cancel", {}),
    ("GET", "/v1/comparisons/{comparison}", {}),
    ("POST", "/v1/comparisons/{comparison}/cancel", {}),
    ("GET", "/v1/batch-predictions/{batch}", {}),
    ("GET", "/v1/batch-predictions/{batch}/results.csv", {}),
    ("GET", "/v1/batch-predictions/{batch}/results.jsonl", {}),
    ("POST", "/v1/batch-predictions/{batch}/cancel", {}),
    ("GET", "/v1/datasets/{dataset}", {}),
    ("GET", "/v1/datasets/{dataset}/versions/1", {}),
    ("GET", "/v1/datasets/{dataset}/versions/1/samples.png", {}),
    ("GET", "/v1/datasets/{dataset}/versions/1/events", {}),
    # Last: they delete what the routes above read.
    ("DELETE", "/v1/webhooks/{webhook}", {}),
    ("DELETE", "/v1/models/{model}/aliases/{alias}", {}),
    ("DELETE", "/v1/models/{model}/versions/{version}", {}),
    ("DELETE", "/v1/models/{model}", {}),
    ("DELETE", "/v1/jobs/{job}", {}),
    ("DELETE", "/v1/searches/{search}", {}),
    ("DELETE", "/v1/datasets/{dataset}/versions/1", {}),
    ("DELETE", "/v1/datasets/{dataset}", {}),
]
# The owner's answer from these is not a plain 2xx while the job is queued: the event stream
# lasts until the job ends, and the confusion matrix waits for success (tests/client cover them).
OWNER_CHECKED_ELSEWHERE = {
    "/v1/jobs/{job}/events",
    "/v1/searches/{search}/events",
    "/v1/jobs/{job}/confusion",
    "/v1/evaluations/{evaluation}/events",
    "/v1/comparisons/{comparison}/events",
    "/v1/batch-predictions/{batch}/events",
    # Pictures of work that has not run yet (no worker here): 409 until it succeeded.
    "/v1/jobs/{job}/mistakes.png",
    "/v1/evaluations/{evaluation}/reliability.png",
    "/v1/evaluations/{evaluation}/mistakes.png",
    "/v1/batch-predictions/{batch}/results.csv",
    "/v1/batch-predictions/{batch}/results.jsonl",
    # The version is still ingesting (no worker): no samples yet, the stream lasts until it
    # ends, and it cannot be deleted mid-ingest (tests/api/test_datasets.py covers these).
    "/v1/datasets/{dataset}/versions/1/samples.png",
    "/v1/datasets/{dataset}/versions/1/events",
    "/v1/datasets/{dataset}/versions/1",
    "/v1/datasets/{dataset}",
}
# The owner's answer is 409 here: the job and the search still run (deleting an ended one:
# tests/api/test_retention.py).
OWNER_CONFLICTS = {("DELETE", "/v1/jobs/{job}"), ("DELETE", "/v1/searches/{search}")}
UNOWNED = [
    ("GET", "/v1/jobs", {}),
    ("POST", "/v1/jobs", {"json": SPEC}),
    ("GET", "/v1/searches", {}),
    ("POST", "/v1/searches", {"json": {"base": SPEC, "grid": GRID}}),
    ("POST", "/v1/searches/plan", {"json": {"base": SPEC, "grid": GRID}}),
    ("GET", "/v1/datasets", {}),
    ("GET", "/v1/models", {}),
    ("POST", "/v1/models", {"json": {"name": "m", "job_id": "0" * 32}}),
    ("GET", "/v1/architectures", {}),
    ("GET", "/v1/workers", {}),
    ("GET", "/v1/webhooks", {}),
    ("POST", "/v1/webhooks", {"json": {"url": "https://93.184.215.14/", "events": ["job.failed"]}}),
    ("GET", "/v1/me", {}),
    ("POST", "/v1/datasets?name=mine", {"content": b"PK"}),
]


def _bad_headers(db_url: str) -> list[dict[str, str]]:
    revoked = make_caller(db_url)
    with session_scope(db_url) as s:
        assert revoke_token(s, revoked.token)
    return [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {revoked.token}"},
        revoked.headers,
    ]


def test_every_v1_route_is_401_without_a_live_token(
    client: ApiClient, owned: dict[str, str], db_url: str
) -> None:
    bad = _bad_headers(db_url)
    for method, path, kwargs in OWNED + UNOWNED:
        url = path.format(**owned)
        for headers in bad:
            r = client.request(method, url, headers=headers, **kwargs)
            assert r.status_code == 401, (method, url, headers, r.text)
            assert r.json()["detail"]["type"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"


def test_v1_routes_are_all_in_the_matrix(client: ApiClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith("/v1")
    }
    listed = {
        (
            m,
            p.split("?")[0]
            .replace("{job}", "{job_id}")
            .replace("{search}", "{search_id}")
            .replace("{model}", "{name}")
            .replace("{webhook}", "{webhook_id}")
            .replace("{evaluation}", "{evaluation_id}")
            .replace("{comparison}", "{comparison_id}")
            .replace("{batch}", "{batch_id}")
            .replace("{dataset}", "{name}")
            .replace("/versions/1", "/versions/{version}"),
        )
        for m, p, _ in OWNED + UNOWNED
    }
    assert routes == listed


def test_another_users_resources_are_404_like_missing_ones(
    client: ApiClient, alice: Caller, bob: Caller, owned: dict[str, str]
) -> None:
    missing = {
        "job": "0" * 32,
        "search": "1" * 32,
        "model": "no-such-model",
        "version": "1",
        "alias": "production",
        "webhook": "2" * 32,
        "evaluation": "3" * 32,
        "comparison": "4" * 32,
        "batch": "5" * 32,
        "dataset": "no-such-dataset",
    }
    for method, path, kwargs in OWNED:
        theirs = client.request(method, path.format(**owned), headers=bob.headers, **kwargs)
        nowhere = client.request(method, path.format(**missing), headers=bob.headers, **kwargs)
        assert theirs.status_code == nowhere.status_code == 404, (method, path, theirs.text)
        a, b = theirs.json()["detail"], nowhere.json()["detail"]
        assert a["type"] == b["type"] == "not_found"
        assert a["message"].replace(a["id"], "ID") == b["message"].replace(b["id"], "ID")
        assert {k for k in a if k != "id"} == {k for k in b if k != "id"}
    # Bob's attempts changed nothing, and Alice still reaches all of it.
    job = client.get(f"/v1/jobs/{owned['job']}", headers=alice.headers).json()
    assert job["cancel_requested"] is False
    for method, path, kwargs in OWNED:
        if path in OWNER_CHECKED_ELSEWHERE:
            continue
        r = client.request(method, path.format(**owned), headers=alice.headers, **kwargs)
        if (method, path) in OWNER_CONFLICTS:
            assert r.status_code == 409, (method, path, r.text)
            continue
        assert r.status_code < 300, (method, path, r.text)


def test_lists_show_only_the_callers_own(
    client: ApiClient, alice: Caller, bob: Caller, owned: dict[str, str]
) -> None:
    def ids(url: str, caller: Caller) -> set[str]:
        return {item["id"] for item in client.get(url, headers=caller.headers).json()["items"]}

    assert owned["job"] in ids("/v1/jobs", alice)
    assert owned["search"] in ids("/v1/searches", alice)
    assert ids("/v1/jobs", bob) == set() and ids("/v1/searches", bob) == set()
    r = client.get(f"/v1/jobs?search_id={owned['search']}", headers=bob.headers)
    assert r.json()["items"] == []


def test_a_revoked_token_stops_working_within_the_cache_time(db_url: str) -> None:
    import time

    from api.main import create_app
    from api.settings import ApiSettings

    caller = make_caller(db_url)
    with ApiClient(create_app(api_settings=ApiSettings(auth_cache_seconds=0.5))) as client:
        assert client.get("/v1/jobs", headers=caller.headers).status_code == 200
        with session_scope(db_url) as s:
            assert revoke_token(s, caller.token)
        time.sleep(0.6)
        assert client.get("/v1/jobs", headers=caller.headers).status_code == 401
    with ApiClient(create_app(api_settings=ApiSettings(auth_cache_seconds=0))) as client:
        other = make_caller(db_url)
        assert client.get("/v1/jobs", headers=other.headers).status_code == 200
        with session_scope(db_url) as s:
            assert revoke_token(s, other.token)
        assert client.get("/v1/jobs", headers=other.headers).status_code == 401
