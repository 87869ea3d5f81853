"""Jobs' names, tags and notes: set at submit, changed with PATCH, found by tag and name."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import SPEC, Caller
from tests.utils.api_client import ApiClient


def _submit(client: ApiClient, caller: Caller, **labels: object) -> dict[str, object]:
    r = client.post("/v1/jobs", json={**SPEC, **labels}, headers=caller.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_labels_are_set_at_submit_and_kept_out_of_the_spec(
    client: ApiClient, alice: Caller, mnist: Path
) -> None:
    job = _submit(client, alice, name="Baseline run", tags=["lr-sweep", "baseline"], notes="n")
    assert (job["name"], job["tags"], job["notes"]) == (
        "Baseline run",
        ["baseline", "lr-sweep"],
        "n",
    )
    assert "tags" not in job["spec"] and job["spec"]["dataset"] == "mnist"


def test_patch_changes_only_the_fields_given(client: ApiClient, alice: Caller, mnist: Path) -> None:
    job = _submit(client, alice, name="first", tags=["a"])
    r = client.request(
        "PATCH", f"/v1/jobs/{job['id']}", json={"tags": ["b", "c"]}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["tags"]) == ("first", ["b", "c"])
    r = client.request(
        "PATCH", f"/v1/jobs/{job['id']}", json={"notes": "why"}, headers=alice.headers
    )
    assert (r.json()["tags"], r.json()["notes"]) == (["b", "c"], "why")


def test_bad_tags_are_refused(client: ApiClient, alice: Caller, mnist: Path) -> None:
    r = client.post("/v1/jobs", json={**SPEC, "tags": ["no spaces"]}, headers=alice.headers)
    assert r.status_code == 422 and "tags" in r.json()["detail"]["message"]


def test_jobs_are_found_by_tag_and_name(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    a = _submit(client, alice, name="Wide CNN", tags=["wide"])
    b = _submit(client, alice, name="narrow 50%_test", tags=["narrow", "wide"])
    _submit(client, alice)
    _submit(client, bob, name="Wide CNN", tags=["wide"])

    def ids(query: str) -> list[object]:
        items = client.get(f"/v1/jobs?{query}", headers=alice.headers).json()["items"]
        return [j["id"] for j in items]

    assert ids("tag=wide") == [b["id"], a["id"]]
    assert ids("tag=narrow") == [b["id"]]
    assert ids("name=wide") == [a["id"]]
    assert ids("name=50%25_") == [b["id"]]  # % and _ are literal
    assert ids("tag=missing") == []


def test_another_users_job_cannot_be_patched(
    client: ApiClient, alice: Caller, bob: Caller, mnist: Path
) -> None:
    job = _submit(client, alice, name="mine")
    r = client.request(
        "PATCH", f"/v1/jobs/{job['id']}", json={"name": "theirs"}, headers=bob.headers
    )
    assert r.status_code == 404
