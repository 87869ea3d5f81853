"""The compare view in chromium: jobs ticked on the jobs list (a lone job and a search's trial)
overlaid on one validation accuracy chart and one loss chart, their specs side by side with the
differing rows highlighted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from cnnlab.client import Client
from tests.utils.service import TINY_MNIST_SPEC


def _points(page: Page, chart: str) -> int:
    return int(page.eval_on_selector(chart, "el => Number(el.dataset.points || 0)"))


def test_compare_jobs_picked_on_the_jobs_list(
    signed_in: Page, lab_client: Client, mnist_job: dict[str, Any], artifacts: Path
) -> None:
    slow = {
        **TINY_MNIST_SPEC,
        "epochs": 3,
        "optimizer": {"name": "sgd", "lr": 0.02, "momentum": 0.9},
    }
    named = lab_client.submit({**slow, "name": "slow-lr", "tags": ["compare"]})
    search = lab_client.search(TINY_MNIST_SPEC, {"batch_size": [32, 128]})
    assert lab_client.wait(named["id"], timeout=120)["status"] == "succeeded"
    assert lab_client.wait_search(search["id"], timeout=120)["status"] == "succeeded"
    trials = lab_client.jobs(search_id=search["id"])
    (trial,) = [t for t in trials if t["spec"]["batch_size"] == 32]
    picked = [mnist_job["id"], named["id"], trial["id"]]
    epochs = sum(len(lab_client.metrics(i)) for i in picked)
    assert epochs == 2 + 3 + 2

    page = signed_in
    expect(page.locator("#compare")).to_have_text("Compare 0 jobs")
    for job_id in picked:
        page.check(f"#jobs tr[data-job='{job_id}'] input.pick")
    expect(page.locator("#compare")).to_have_text("Compare 3 jobs")
    page.click("#compare")
    expect(page).to_have_url(f"/#/compare?ids={','.join(picked)}")

    # One line per job: every epoch of every job on each chart.
    expect(page.locator("#compare-acc .legend .key")).to_have_count(3)
    assert _points(page, "#compare-acc") == epochs
    assert _points(page, "#compare-loss") == epochs
    expect(page.locator("#compare-acc .legend")).to_contain_text("slow-lr")

    table = page.locator("#compare-table")
    differs = re.compile(r"\bdiffers\b")
    for field in ("optimizer.lr", "epochs", "batch_size", "search", "tags", "epochs run"):
        expect(table.locator(f"tr[data-field='{field}']")).to_have_class(differs)
    for field in ("dataset", "val_size", "optimizer.momentum", "model.arch", "status"):
        expect(table.locator(f"tr[data-field='{field}']")).not_to_have_class(differs)
    expect(page.locator("#compare-differences")).to_contain_text("3 spec fields differ")
    row = table.locator("tr[data-field='optimizer.lr'] td")
    assert row.all_inner_texts() == ["0.1", "0.02", "0.1"]
    page.screenshot(path=artifacts / "compare.png", full_page=True)

    page.check("#only-differences")
    expect(table.locator("tr[data-field='dataset']")).to_be_hidden()
    expect(table.locator("tr[data-field='optimizer.lr']")).to_be_visible()

    # A job that is not there (or another user's) is named, the others still compared.
    page.goto(f"/#/compare?ids={picked[0]},{'0' * 32}")
    expect(page.locator(f"[data-missing='{'0' * 32}']")).to_contain_text("00000000")
    expect(page.locator("#compare-acc .legend .key")).to_have_count(1)

    # A job still queued or running: its curves grow on the page as its epochs end.
    running = lab_client.submit({**slow, "epochs": 4})
    # Record every point count the accuracy chart is drawn with (the page redraws it).
    page.evaluate("""() => {
        window.pointCounts = [];
        new MutationObserver(() => {
            const n = document.getElementById("compare-acc")?.dataset.points;
            if (n) window.pointCounts.push(Number(n));
        }).observe(document.body, { subtree: true, childList: true, attributes: true });
    }""")
    page.goto(f"/#/compare?ids={mnist_job['id']},{running['id']}")
    expect(page.locator("#compare-acc")).to_have_attribute("data-points", "6", timeout=120_000)
    assert lab_client.job(running["id"])["epoch"] == 4
    counts = page.evaluate("window.pointCounts")
    assert min(counts) < 6, counts  # drawn before the job had ended, then again as it grew

    # A search's page compares its trials.
    page.goto(f"/#/searches/{search['id']}")
    page.click("#compare-trials")
    expect(page.locator("#compare-acc .legend .key")).to_have_count(2)
    expect(page.locator("#compare-table tr[data-field='batch_size']")).to_have_class(differs)

    page.goto("/#/jobs")
    page.click("#compare-clear")
    expect(page.locator("#compare")).to_have_text("Compare 0 jobs")
