"""The Models pages in chromium: register a succeeded job's model from its page, see it listed,
point `production` at version 1 and remove it again, and the server's errors on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from cnnlab.client import Client
from tests.ui.conftest import PHONE

NAME = "digits-ui"


def test_register_a_job_list_the_model_and_move_an_alias(
    signed_in: Page, lab_client: Client, mnist_job: dict[str, Any], artifacts: Path
) -> None:
    page = signed_in
    job_id = mnist_job["id"]
    page.goto(f"/#/jobs/{job_id}")

    # A name the server refuses: its message, and the input marked.
    page.fill("#register-name", "Not A Name")
    page.click("#register")
    expect(page.locator("#register-message .error")).to_contain_text("name")
    expect(page.locator("#register-name")).to_have_class("invalid")

    page.fill("#register-name", NAME)
    page.click("#register")
    expect(page.locator("#register-message")).to_contain_text(f"Registered as {NAME} version 1")
    expect(page.locator("#register-name")).not_to_have_class("invalid")
    page.screenshot(path=artifacts / "register-model.png", full_page=True)
    page.click("#registered-model")
    expect(page).to_have_url(f"/#/models/{NAME}")

    # The model page: its one version, from this job, with the server's numbers.
    version = page.locator("#versions tr[data-version='1']")
    expect(version.locator(f"a[href='#/jobs/{job_id}']")).to_have_text(job_id[:8])
    expect(version).to_contain_text(mnist_job["spec"]["dataset"])
    expect(version).to_contain_text(f"{100 * mnist_job['test_accuracy']:.2f}%")
    expect(page.locator("#aliases")).to_contain_text("No aliases yet")

    # Point production at version 1: shown on the page and kept by the server.
    page.fill("#alias-name", "production")
    page.select_option("#alias-version", "1")
    page.click("#set-alias")
    expect(page.locator("#aliases li[data-alias='production']")).to_contain_text("v1")
    expect(version.locator(".badge[data-alias='production']")).to_be_visible()
    assert lab_client.model(NAME)["aliases"] == {"production": 1}
    page.screenshot(path=artifacts / "model.png", full_page=True)

    # An alias name the server refuses: its message.
    page.fill("#alias-name", "9 lives")
    page.click("#set-alias")
    expect(page.locator("#alias-message .error")).to_be_visible()
    expect(page.locator("#alias-name")).to_have_class("invalid")

    # The list (from the nav) shows the model with its alias.
    page.click("#nav >> text=Models")
    expect(page.locator("#nav a.active")).to_have_text("Models")
    row = page.locator(f"#models tr[data-model='{NAME}']")
    expect(row).to_contain_text("production → v1")
    expect(row.locator(".latest")).to_have_text("v1")
    page.screenshot(path=artifacts / "models.png", full_page=True)

    # Remove the alias from the model page.
    row.locator("a").click()
    page.click("#aliases button[data-remove='production']")
    expect(page.locator("#aliases li[data-alias='production']")).to_have_count(0)
    expect(page.locator("#aliases")).to_contain_text("No aliases yet")
    assert lab_client.model(NAME)["aliases"] == {}

    # On a phone's width the page does not scroll sideways (the versions table scrolls itself).
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
    page.screenshot(path=artifacts / "model-phone.png", full_page=True)


def test_an_unknown_model_shows_the_servers_message(signed_in: Page) -> None:
    page = signed_in
    page.goto("/#/models/no-such-model")
    expect(page.locator("main .error")).to_be_visible()
    expect(page.locator("main h1")).to_contain_text("no-such-model")
