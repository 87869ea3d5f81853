"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a service.

Screenshots of every page go to ``test-artifacts/ui/`` (and are meant to be looked at).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from cnnlab.client import Client
from cnnlab.testing.procs import REPO
from cnnlab.testing.stack import Stack
from tests.utils.service import TINY_MNIST_SPEC, service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts" / "ui"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def ui_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    with service(tmp_path_factory.mktemp("ui-service")) as running:
        yield running


@pytest.fixture(scope="session")
def stack(ui_lab: tuple[Stack, str]) -> Stack:
    return ui_lab[0]


@pytest.fixture(scope="session")
def token(ui_lab: tuple[Stack, str]) -> str:
    return ui_lab[1]


@pytest.fixture(scope="session")
def lab_client(stack: Stack, token: str) -> Iterator[Client]:
    with Client(stack.url, token) as c:
        yield c


@pytest.fixture(scope="session")
def mnist_job(lab_client: Client) -> dict[str, Any]:
    """A succeeded job on (tiny, generated) MNIST: 28×28 digits, for the drawing canvas."""
    job = lab_client.submit(TINY_MNIST_SPEC)
    done = lab_client.wait(job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    return done


# Package-scoped: Playwright's sync API keeps an event loop running in this thread while it is
# open, so it is closed before the tests after these (in the same pytest-xdist worker) run.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _console_error(message: ConsoleMessage, errors: list[str]) -> None:
    """Keep a console error, except the browser's own line for an HTTP error answer (a 401 to a
    bad token, a 409 before a job has succeeded): the page handles those and shows them."""
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(f"console: {message.text}")


def _open(browser: Browser, stack: Stack, viewport: ViewportSize) -> Iterator[Page]:
    context = browser.new_context(base_url=stack.url, viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _console_error(msg, errors))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A fresh tab (its own session storage), failing the test on any uncaught script error or
    console error."""
    yield from _open(browser, stack, DESKTOP)


@pytest.fixture
def phone(browser: Browser, stack: Stack) -> Iterator[Page]:
    yield from _open(browser, stack, PHONE)


def sign_in(page: Page, token: str) -> None:
    page.goto("/")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#jobs")


@pytest.fixture
def signed_in(page: Page, token: str) -> Page:
    sign_in(page, token)
    return page
