"""Security headers on every answer, and interactive docs that need no CDN."""

from __future__ import annotations

import re

from api.security import CONTENT_SECURITY_POLICY
from tests.api.conftest import Caller
from tests.utils.api_client import ApiClient

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {name: values for name, *values in parts}


def test_the_policy_allows_only_this_server() -> None:
    policy = _directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline scripts, no eval
    assert policy["style-src"] == ["'self'"]
    # Sample images are data: URIs; the heatmap is a blob: URL of a fetched PNG.
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


def test_every_kind_of_answer_carries_the_headers(client: ApiClient, alice: Caller) -> None:
    answers = [
        client.get("/"),  # the dashboard
        client.get("/static/main.js?v=2"),
        client.get("/docs"),
        client.get("/docs/assets/swagger-ui-bundle.js"),
        client.get("/openapi.json"),
        client.get("/healthz"),
        client.get("/v1/jobs", headers=alice.headers),
        client.get("/v1/jobs"),  # 401
        client.get("/v1/jobs/" + "0" * 32, headers=alice.headers),  # 404
        client.get("/no-such-page"),
    ]
    for r in answers:
        for name, value in EXPECTED.items():
            assert r.headers.get(name) == value, (r.request.url, name, r.status_code)
        assert len(r.headers.get_list("content-security-policy")) == 1


def test_the_dashboard_page_needs_nothing_the_policy_forbids(client: ApiClient) -> None:
    html = client.get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "an external resource"


def test_the_docs_are_served_without_a_cdn(client: ApiClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    # Nothing from another host, and no inline script (the policy would block it).
    assert not re.search(r"(src|href)=\"(https?:)?//", html), html
    assert "cdn" not in html.lower() and "jsdelivr" not in html.lower()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    referenced = re.findall(r"(?:src|href)=\"([^\"]+)\"", html)
    assert "/docs/assets/swagger-ui-bundle.js" in referenced
    for url in referenced:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    init = client.get("/docs/assets/init.js").text
    assert "SwaggerUIBundle(" in init and '"/openapi.json"' in init
    assert "//" not in init.replace('"/openapi.json"', "")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 100_000  # the real Swagger UI, not a stub
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    assert client.get("/docs/assets/nope.js").status_code == 404
    assert client.get("/redoc").status_code == 404  # ReDoc needs inline styles and a CDN
