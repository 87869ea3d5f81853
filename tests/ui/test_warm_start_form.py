"""The New run form's warm start: the schema's optional `init` object is shown as its own fields
(a model with an alias or version, or a job), left out of the spec while they are empty, and the
server's refusal of a half-filled one marks them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from cnnlab.client import Client


def test_the_form_offers_a_warm_start_as_fields(
    signed_in: Page, lab_client: Client, mnist_job: dict[str, Any], artifacts: Path
) -> None:
    page = signed_in
    page.click("text=New run")
    page.wait_for_selector("#dataset option[value=mnist]", state="attached")
    # One input per field of `init`, not one text box for its JSON.
    for field, kind in [("model", "text"), ("alias", "text"), ("version", "number")]:
        assert page.locator(f"#init-{field}").evaluate("el => el.type") == kind
    assert page.locator("#init-job_id").evaluate("el => el.type") == "text"
    assert page.locator("#freeze option").all_inner_texts() == ["(server default)", "features"]
    assert page.locator("[data-path='init']").count() == 0

    page.select_option("#dataset", "mnist")
    for selector, value in {"#val_size": "200", "#batch_size": "64", "#epochs": "1"}.items():
        page.fill(selector, value)
    assert "init" not in json.loads(page.locator("#spec-preview").text_content() or "{}")

    # An alias without a model: the server refuses `init`, and the form marks its fields.
    page.fill("#init-alias", "production")
    page.click("#submit")
    expect(page.locator("#new-run .error")).to_contain_text("init")
    expect(page.locator("#init-model")).to_have_class("invalid")

    page.fill("#init-alias", "")
    page.fill("#init-job_id", mnist_job["id"])
    page.select_option("#freeze", "features")
    page.fill("#freeze_epochs", "1")
    preview = json.loads(page.locator("#spec-preview").text_content() or "{}")
    assert preview["init"] == {"job_id": mnist_job["id"]}
    assert preview["freeze"] == "features"
    page.screenshot(path=artifacts / "new-run-warm-start.png", full_page=True)
    page.click("#submit")
    page.wait_for_url("**/#/jobs/*")
    job = lab_client.job(page.url.rsplit("/", 1)[-1])
    assert job["spec"]["init"]["job_id"] == mnist_job["id"]
    assert job["spec"]["freeze"] == "features"
    lab_client.cancel(job["id"])
