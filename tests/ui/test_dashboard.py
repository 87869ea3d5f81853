"""The dashboard in chromium: sign in, submit a job and watch its curves grow, a search's
heatmap and best trial (the server's), the form's choices and defaults (the server's), the
prediction canvas, cancel and download, and a phone-width screen."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from PIL import Image
from playwright.sync_api import Page, expect

from cnnlab.client import Client
from cnnlab.testing.stack import Stack
from tests.ui.conftest import PHONE, sign_in
from tests.utils.service import TINY_MNIST_SPEC

FASHION = {"dataset": "fashion_mnist", "train_size": 2000, "val_size": 1000, "batch_size": 256}


def _fill(page: Page, values: dict[str, str]) -> None:
    """Fill the form's inputs and choose in its selects: ``{"#id": value}``, in order."""
    for selector, value in values.items():
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)


def _submit_job(page: Page, values: dict[str, str], screenshot: Path) -> str:
    """Fill the New run form, screenshot it, submit a job; the new job's id."""
    _fill(page, values)
    page.screenshot(path=screenshot, full_page=True)
    page.click("#submit")
    page.wait_for_url("**/#/jobs/*")
    return page.url.rsplit("/", 1)[-1]


def _points(page: Page, chart: str) -> int:
    return int(page.eval_on_selector(chart, "el => Number(el.dataset.points || 0)"))


def test_sign_in_refuses_a_bad_token_and_keeps_a_good_one(
    page: Page, token: str, artifacts: Path
) -> None:
    page.goto("/")
    expect(page).to_have_url("/#/signin")
    page.fill("#token", "not-a-token")
    page.click("form.signin button[type=submit]")
    expect(page.locator("form.signin .error")).to_contain_text("invalid or revoked token")
    page.screenshot(path=artifacts / "signin.png", full_page=True)

    sign_in(page, token)
    expect(page.locator("#nav")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cnnlab-token')") == token
    page.reload()  # the token lasts for the browser session
    expect(page.locator("#jobs")).to_be_visible()
    page.click("#signout")
    expect(page).to_have_url("/#/signin")
    assert page.evaluate("sessionStorage.getItem('cnnlab-token')") is None


def test_submit_a_job_and_watch_its_curves_grow_live(
    signed_in: Page, lab_client: Client, artifacts: Path, real_fashion_mnist: Path
) -> None:
    page = signed_in
    page.click("text=New run")
    page.wait_for_selector("#dataset option[value=fashion_mnist]", state="attached")
    values = {"#dataset": "fashion_mnist", "#train_size": "2000", "#val_size": "1000"}
    values |= {"#epochs": "4", "#batch_size": "256"}
    job_id = _submit_job(page, values, artifacts / "new-run.png")
    page.wait_for_selector("#acc-chart")
    # Record every value the chart's point count takes, in the page, as events redraw it.
    page.evaluate(
        """() => {
            window.__sameDocument = true;
            window.__old = [];
            const chart = document.getElementById("acc-chart");
            new MutationObserver((records) => {
                for (const r of records) window.__old.push(Number(r.oldValue || 0));
            }).observe(chart, { attributes: true, attributeFilter: ["data-points"],
                                attributeOldValue: true });
        }"""
    )
    badge = page.locator(".toolbar .badge")
    expect(badge).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#acc-chart")).to_have_attribute("data-points", "4")
    history = [*page.evaluate("window.__old"), _points(page, "#acc-chart")]
    counts = [n for i, n in enumerate(history) if i == 0 or n != history[i - 1]]
    # At least two points were added to the page it was showing, one redraw at a time.
    assert counts[-1] == 4 and counts[-1] - counts[0] >= 2, history
    assert counts == sorted(counts) and len(counts) >= 3, history
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert _points(page, "#loss-chart") == 8  # train and validation loss per epoch

    job = lab_client.job(job_id)
    assert job["status"] == "succeeded"
    expect(page.locator("#best-val")).to_have_text(f"{100 * job['best_val_accuracy']:.2f}%")
    expect(page.locator("#test-acc")).to_have_text(f"{100 * job['test_accuracy']:.2f}%")
    # Both are computed by the API on first request (the confusion matrix over the 10,000 test
    # images): seconds on a busy 2-core machine, so more than expect's default 5 s to appear.
    expect(page.locator("#samples figure")).to_have_count(24, timeout=60_000)
    expect(page.locator("#confusion table.confusion tr")).to_have_count(11, timeout=60_000)
    expect(page.locator("#confusion")).to_contain_text("10000 test images")
    expect(page.locator("#cancel")).to_be_hidden()
    page.screenshot(path=artifacts / "job.png", full_page=True)

    # The jobs list shows it, filters by status, and searches.
    page.click("#nav >> text=Jobs")
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row).to_contain_text("epoch 4 of 4")
    page.select_option("#status-filter", "running")
    expect(row).to_have_count(0)
    page.select_option("#status-filter", "succeeded")
    expect(row).to_have_count(1)
    page.fill("#job-search", job_id[:8])
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    page.fill("#job-search", "no such job")
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    page.fill("#job-search", "fashion_mnist")
    expect(row).to_have_count(1)
    page.screenshot(path=artifacts / "jobs.png", full_page=True)


def test_a_search_shows_its_heatmap_trials_and_curves(
    signed_in: Page, lab_client: Client, artifacts: Path, real_fashion_mnist: Path
) -> None:
    base = {**FASHION, "train_size": 1000, "val_size": 500, "epochs": 2}
    search = lab_client.search(base, {"optimizer.lr": [0.01, 0.1], "batch_size": [128, 256]})
    done = lab_client.wait_search(search["id"], poll=0.3, timeout=180)
    assert done["status"] == "succeeded"
    page = signed_in
    page.click("#nav >> text=Searches")
    page.click(f"tr[data-search='{search['id']}'] a")
    # The heatmap is the server's picture of the ended search.
    heat = page.locator("#heatmap img")
    expect(heat).to_have_attribute("data-status", "succeeded")
    assert heat.evaluate("img => img.complete && img.naturalWidth") > 0
    # The best trial is the server's, and with this metric it has the best validation accuracy.
    best = done["best_job_id"]
    expect(page.locator("#best-trial")).to_have_attribute("href", f"#/jobs/{best}")
    expect(page.locator("#best-trial")).to_contain_text(best[:8])
    expect(page.locator("#trials-table tr.best")).to_have_attribute("data-job", best)
    best_acc = max(t["val_accuracy"] for t in done["trials"])
    expect(page.locator("#best-score")).to_have_text(f"{100 * best_acc:.2f}%")
    expect(page.locator("#trial-curves")).to_have_attribute("data-points", "8")

    # Sorting the trials table by validation accuracy puts the best trial first, then last.
    header = page.locator("#trials-table th", has_text="val accuracy")
    header.click()
    first = page.locator("#trials-table tbody tr").first
    expect(first).to_have_attribute("data-job", done["best_job_id"])
    header.click()
    expect(page.locator("#trials-table tbody tr").last).to_have_attribute(
        "data-job", done["best_job_id"]
    )
    page.screenshot(path=artifacts / "search.png", full_page=True)


def _draw_seven(page: Page) -> None:
    canvas = page.locator("#draw")
    canvas.scroll_into_view_if_needed()  # mouse events land only inside the viewport
    box = canvas.bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.25 * w, y + 0.2 * h)
    page.mouse.down()
    for px, py in [(0.75, 0.2), (0.6, 0.5), (0.45, 0.85)]:
        page.mouse.move(x + px * w, y + py * h, steps=8)
    page.mouse.up()


def test_draw_a_digit_and_get_a_prediction(
    signed_in: Page, mnist_job: dict[str, Any], artifacts: Path, tmp_path: Path
) -> None:
    page = signed_in
    page.goto(f"/#/jobs/{mnist_job['id']}")
    page.wait_for_selector("#draw")
    # The sample grid and the confusion matrix load beside the canvas and move it as they
    # arrive: draw only once the page has settled, or the strokes miss the canvas.
    expect(page.locator("#confusion table.confusion")).to_be_visible(timeout=60_000)
    expect(page.locator("figure img").first).to_be_visible(timeout=60_000)
    _draw_seven(page)
    with page.expect_request(lambda r: r.url.endswith("/predict")) as sent:
        page.click("#predict")
    body = json.loads(sent.value.post_data or "{}")
    instance = body["instances"][0]
    assert len(instance) == 28 and all(len(row) == 28 for row in instance)
    assert max(max(row) for row in instance) > 200  # the ink arrived
    bars = page.locator("#probabilities li")
    expect(bars).to_have_count(10)
    predicted = page.locator("#predicted-class").inner_text()
    assert predicted in [str(d) for d in range(10)]
    total = sum(float(t.rstrip("%")) for t in page.locator("#probabilities .pct").all_inner_texts())
    assert total == pytest.approx(100, abs=1)
    expect(page.locator("#confusion table.confusion")).to_be_visible()
    page.screenshot(path=artifacts / "predict.png", full_page=True)

    # An image file goes up as it is and gets its own answer.
    image = Image.new("L", (28, 28), 0)
    image.paste(230, (0, 8 * 28 // 10, 28, 8 * 28 // 10 + 2))  # a "class 8" pattern
    path = tmp_path / "eight.png"
    image.save(path)
    page.set_input_files("#image-file", str(path))
    expect(page.locator("#predicted-class")).to_have_text("8")


def test_cancel_and_download_from_the_job_page(
    signed_in: Page, lab_client: Client, mnist_job: dict[str, Any], artifacts: Path
) -> None:
    page = signed_in
    page.goto(f"/#/jobs/{mnist_job['id']}")
    with page.expect_download() as download:
        page.click("#download")
    data = Path(download.value.path()).read_bytes()
    assert torch.load(io.BytesIO(data))["epoch"] >= 1
    assert download.value.suggested_filename == f"{mnist_job['id']}-best.pt"

    job = lab_client.submit({**TINY_MNIST_SPEC, "epochs": 300})
    page.goto(f"/#/jobs/{job['id']}")
    page.click("#cancel")
    expect(page.locator(".toolbar .badge")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#cancel")).to_be_hidden()
    assert lab_client.job(job["id"])["status"] == "cancelled"


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


def test_usable_on_a_phone(
    phone: Page, token: str, mnist_job: dict[str, Any], artifacts: Path
) -> None:
    sign_in(phone, token)
    _no_sideways_scroll(phone)
    phone.screenshot(path=artifacts / "phone-jobs.png", full_page=True)
    phone.goto(f"/#/jobs/{mnist_job['id']}")
    phone.wait_for_selector("#probabilities, #predict")
    expect(phone.locator("#acc-chart")).to_have_attribute("data-points", "2")
    _no_sideways_scroll(phone)
    phone.screenshot(path=artifacts / "phone-job.png", full_page=True)
    phone.click("#nav >> text=New run")
    phone.wait_for_selector("#submit")
    _no_sideways_scroll(phone)
    phone.screenshot(path=artifacts / "phone-new.png", full_page=True)
    phone.goto(f"/#/compare?ids={mnist_job['id']}")
    expect(phone.locator("#compare-acc")).to_have_attribute("data-points", "2")
    _no_sideways_scroll(phone)
    phone.screenshot(path=artifacts / "phone-compare.png", full_page=True)
    phone.click("#nav >> text=Datasets")
    phone.wait_for_selector("#datasets tbody tr")
    _no_sideways_scroll(phone)
    phone.screenshot(path=artifacts / "phone-datasets.png", full_page=True)


def test_the_form_names_a_bad_field_and_starts_a_grid_search(
    signed_in: Page, lab_client: Client
) -> None:
    page = signed_in
    page.click("text=New run")
    page.wait_for_selector("#dataset option[value=mnist]", state="attached")
    # val_size: more than this server's tiny MNIST holds
    _fill(page, {"#dataset": "mnist", "#val_size": "5000", "#epochs": "1"})
    page.click("#submit")
    expect(page.locator("#new-run .error")).to_contain_text("val_size")
    expect(page.locator("#val_size")).to_have_class("invalid")

    _fill(page, {"#val_size": "200", "#axis0": "optimizer.lr", "#axis0-values": "0.01, 0.1"})
    _fill(page, {"#axis1": "batch_size", "#axis1-values": "32 64 128"})
    expect(page.locator("#submit")).to_have_text("Start search (6 trials)")
    page.click("#submit")
    page.wait_for_url("**/#/searches/*")
    search = lab_client.get_search(page.url.rsplit("/", 1)[-1])
    assert search["grid"] == {"optimizer.lr": [0.01, 0.1], "batch_size": [32, 64, 128]}
    # The page shows the new search's heatmap (the server's picture of its 2 × 3 grid) and
    # follows its trials as their events arrive.
    heat = page.locator("#heatmap img")
    expect(heat).to_have_attribute("data-status", re.compile(r"\w+"))
    assert heat.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(page.locator("#trials-table tbody tr")).to_have_count(6)
    lab_client.cancel_search(search["id"])
    expect(page.locator(".toolbar .badge")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#heatmap img")).to_have_attribute("data-status", "cancelled")


def _openapi(stack: Stack) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{stack.url}/openapi.json").json()
    return doc["components"]["schemas"]


def test_the_form_takes_its_choices_and_defaults_from_the_server(
    signed_in: Page, lab_client: Client, stack: Stack, token: str, artifacts: Path
) -> None:
    schemas = _openapi(stack)
    page = signed_in
    page.click("text=New run")
    page.wait_for_selector("#model-arch option[value=cnn_deep]", state="attached")
    # Every default is the spec's, every choice the server's.
    for name, default in [("epochs", 10), ("batch_size", 1024), ("val_size", 10000)]:
        assert schemas["TrainSpec"]["properties"][name]["default"] == default
        expect(page.locator(f"#{name}")).to_have_value(str(default))
    expect(page.locator("#optimizer-lr")).to_have_value(
        str(schemas["OptimizerSpec"]["properties"]["lr"]["default"])
    )
    options = page.locator("#optimizer-name option").all_inner_texts()
    assert options == schemas["OptimizerSpec"]["properties"]["name"]["enum"]
    devices = schemas["TrainSpec"]["properties"]["device"]["enum"]
    assert page.locator("#device option").all_inner_texts() == devices
    models = httpx.get(
        f"{stack.url}/v1/architectures", headers={"Authorization": f"Bearer {token}"}
    )
    archs = [m["name"] for m in models.json()]
    assert "cnn_deep" in archs
    assert page.locator("#model-arch option").all_inner_texts() == archs
    expect(page.locator("#model-arch")).to_have_value("cnn")

    values = {"#dataset": "mnist", "#model-arch": "cnn_deep", "#val_size": "200"}
    values |= {"#batch_size": "64", "#epochs": "1"}
    job = lab_client.job(_submit_job(page, values, artifacts / "new-run-form.png"))
    assert job["spec"]["model"]["arch"] == "cnn_deep"
    expect(page.locator("#job-summary")).to_contain_text("cnn_deep")
    lab_client.cancel(job["id"])


def test_a_search_page_shows_the_servers_best_trial_for_its_metric(
    signed_in: Page, lab_client: Client, artifacts: Path
) -> None:
    grid = {"optimizer.lr": [0.01, 0.1]}
    search = lab_client.search(TINY_MNIST_SPEC, grid, metric="val_loss", mode="min")
    done = lab_client.wait_search(search["id"], poll=0.3, timeout=180)
    assert done["status"] == "succeeded" and done["best_job_id"]
    best = next(t for t in done["trials"] if t["job_id"] == done["best_job_id"])
    page = signed_in
    page.click("#nav >> text=Searches")
    row = page.locator(f"tr[data-search='{search['id']}']")
    expect(row.locator(".best-score")).not_to_have_text("–")
    assert float(row.locator(".best-score").inner_text()) == pytest.approx(best["score"], rel=1e-3)
    row.locator("a").click()
    expect(page.locator("#best-trial")).to_have_attribute("href", f"#/jobs/{best['job_id']}")
    shown = float(page.locator("#best-score").inner_text())
    assert shown == pytest.approx(best["score"], rel=1e-3)
    expect(page.locator("#trials-table tr.best")).to_have_attribute("data-job", best["job_id"])
    expect(page.locator("#trials-table th", has_text="val loss")).to_have_count(1)
    expect(page.locator(".summary")).to_contain_text("val_loss (min)")
    expect(page.locator("#heatmap img")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#trial-curves")).to_have_attribute("data-points", "4")
    page.screenshot(path=artifacts / "search-val-loss.png", full_page=True)
