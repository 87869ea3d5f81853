"""Tenants: nothing of another user's shows, not even through the shape of a 404."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from cnnlab.store.db import session_scope
from cnnlab.store.tables import Token
from cnnlab.store.users import authenticate
from tests.api.conftest import Caller
from tests.api.test_auth import OWNED
from tests.utils.api_client import ApiClient

# Every route that takes an id or a name (filled in from ``owned``): the auth matrix's list.
BY_ID = OWNED


def test_someone_elses_id_is_byte_for_byte_a_missing_one(
    client: ApiClient, bob: Caller, owned: dict[str, str]
) -> None:
    # Missing ids of the same length, so even Content-Length cannot tell them apart.
    missing = {
        "job": "f" * len(owned["job"]),
        "search": "e" * len(owned["search"]),
        "model": "m" * len(owned["model"]),
        "version": owned["version"],  # of a model Bob does not have: missing as a whole
        "alias": owned["alias"],
        "webhook": "d" * len(owned["webhook"]),
        "evaluation": "c" * len(owned["evaluation"]),
        "comparison": "b" * len(owned["comparison"]),
        "batch": "a" * len(owned["batch"]),
        "dataset": "n" * len(owned["dataset"]),
    }
    for method, path, kwargs in BY_ID:
        theirs = client.request(method, path.format(**owned), headers=bob.headers, **kwargs)
        nowhere = client.request(method, path.format(**missing), headers=bob.headers, **kwargs)
        assert theirs.status_code == nowhere.status_code == 404, (path, theirs.text)
        body = theirs.content
        for key, ident in owned.items():
            body = body.replace(ident.encode(), missing[key].encode())
        assert body == nowhere.content, path
        assert theirs.headers.multi_items() == nowhere.headers.multi_items(), path


def test_lists_and_filters_show_nothing_of_anyone_else(
    client: ApiClient, alice: Caller, bob: Caller, owned: dict[str, str]
) -> None:
    nobody = "0" * len(owned["search"])
    for url in (f"/v1/jobs?search_id={owned['search']}", f"/v1/jobs?search_id={nobody}"):
        r = client.get(url, headers=bob.headers)
        assert r.status_code == 200 and r.json() == {"items": [], "next": None}
    for url in ("/v1/jobs", "/v1/searches", "/v1/jobs?status=queued"):
        assert client.get(url, headers=bob.headers).json()["items"] == []
    # A paging cursor made from Alice's list shows Bob nothing of hers either.
    page = client.get("/v1/jobs?limit=1", headers=alice.headers).json()
    assert page["next"] is not None
    r = client.get(f"/v1/jobs?cursor={page['next']}", headers=bob.headers)
    assert r.status_code == 200 and r.json()["items"] == []


def test_bobs_cancels_leave_alices_work_alone(
    client: ApiClient, alice: Caller, bob: Caller, owned: dict[str, str]
) -> None:
    client.post(f"/v1/jobs/{owned['job']}/cancel", headers=bob.headers)
    client.post(f"/v1/searches/{owned['search']}/cancel", headers=bob.headers)
    job = client.get(f"/v1/jobs/{owned['job']}", headers=alice.headers).json()
    search = client.get(f"/v1/searches/{owned['search']}", headers=alice.headers).json()
    assert not job["cancel_requested"] and not search["cancel_requested"]
    assert search["status"] == "queued"


def test_tokens_are_stored_only_as_hashes(db_url: str, alice: Caller, bob: Caller) -> None:
    with session_scope(db_url) as s:
        stored = set(s.scalars(select(Token.token_hash)))
        for caller in (alice, bob):
            assert caller.token not in stored
            assert hashlib.sha256(caller.token.encode()).hexdigest() in stored
            # One character off is nobody, whichever character it is.
            for i in (0, len(caller.token) // 2, len(caller.token) - 1):
                changed = "x" if caller.token[i] != "x" else "y"
                assert authenticate(s, caller.token[:i] + changed + caller.token[i + 1 :]) is None
            assert authenticate(s, caller.token + " ") is None
