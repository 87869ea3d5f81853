"""The Datasets pages in chromium: upload an archive of real images through the page (the bytes
stream with progress, then the worker's ingest), open the dataset, see its images per class and
split, its sample grid and report; the new-run form offers it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from cnnlab.client import Client
from tests.utils.image_archives import make_zip, write_class_folders

NAMES = ["bolt", "nut", "washer"]


def test_upload_an_archive_and_see_the_dataset(
    signed_in: Page, lab_client: Client, artifacts: Path, tmp_path: Path
) -> None:
    page = signed_in
    archive = make_zip(write_class_folders(tmp_path / "parts", per_class=8, names=NAMES))
    page.click("nav a[href='#/datasets']")
    expect(page.locator("#datasets tr[data-dataset='mnist']")).to_contain_text("builtin")

    # No name yet: the page says so and sends nothing.
    page.set_input_files("#dataset-file", str(archive))
    expect(page.locator("#upload-status .error")).to_contain_text("Name the dataset")
    expect(page.locator("#dataset-name")).to_have_class("invalid")

    page.fill("#dataset-name", "parts-ui")
    page.set_input_files("#dataset-file", str(archive))
    expect(page.locator("#upload-done")).to_contain_text("parts-ui@1 is ready", timeout=120_000)
    assert lab_client.dataset("parts-ui@1")["classes"] == NAMES
    page.click("#uploaded-dataset")
    expect(page).to_have_url("/#/datasets/parts-ui")

    expect(page.locator("#dataset-versions tr[data-version='1']")).to_contain_text("ready")
    for name in NAMES:
        expect(page.locator(f"#class-counts li[data-class='{name}']")).to_be_visible()
    samples = page.locator("#dataset-samples")
    expect(samples).to_be_visible()
    assert samples.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(page.locator("#dataset-report")).to_contain_text("Skipped files (0)")
    page.screenshot(path=artifacts / "dataset.png", full_page=True)

    page.click("nav a[href='#/new']")
    option = page.locator("option[value='parts-ui']")
    expect(option.first).to_contain_text("your upload")
