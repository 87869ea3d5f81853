"""A sampled search in chromium: the form's space, sampler and pruner, the server's plan, the
search page's pause and resume, parallel coordinates (one line per trial) and the trials' curves;
and, from a fabricated search, how pruned trials and the server's best trial are shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from cnnlab.client import Client
from tests.ui.test_dashboard import _fill

TRIALS = 3


def test_a_sampled_search_with_a_pruner_from_the_form(
    signed_in: Page, lab_client: Client, artifacts: Path
) -> None:
    page = signed_in
    page.click("text=New run")
    page.wait_for_selector("#dataset option[value=mnist]", state="attached")
    _fill(page, {"#dataset": "mnist", "#val_size": "200", "#batch_size": "64", "#epochs": "2"})
    _fill(page, {"#search-kind": "space", "#space0": "optimizer.lr", "#space0-kind": "loguniform"})
    _fill(page, {"#space0-low": "0.01", "#space0-high": "0.3"})
    _fill(page, {"#space1": "batch_size", "#space1-kind": "choice", "#space1-choices": "32, 64"})
    _fill(page, {"#space2": "model.dropout", "#space2-kind": "uniform"})
    _fill(page, {"#space2-low": "0", "#space2-high": "0.5"})
    _fill(page, {"#search-sampler": "random", "#search-num_trials": str(TRIALS)})
    _fill(page, {"#search-seed": "3", "#search-max_concurrent_trials": "1"})
    _fill(page, {"#pruner": "asha", "#pruner-min_epochs": "1"})
    expect(page.locator("#pruner-warmup_epochs")).to_be_hidden()
    expect(page.locator("#submit")).to_have_text(f"Start search ({TRIALS} trials)")

    # The plan is the server's: the trials it would draw, what they could cost, how long.
    page.click("#plan-search")
    expect(page.locator("#plan, #new-run .error").first).to_be_visible(timeout=30_000)
    assert not page.locator("#new-run .error").count(), page.locator("#new-run .error").inner_text()
    expect(page.locator("#plan-table tbody tr")).to_have_count(TRIALS)
    expect(page.locator("#plan-cost")).to_contain_text(f"{2 * TRIALS} epochs")
    expect(page.locator("#plan-seconds")).not_to_be_empty()
    planned = page.locator("#plan-table tbody tr").first.inner_text()
    assert "lr=" in planned and "batch_size=" in planned, planned
    page.screenshot(path=artifacts / "new-sampled-search.png", full_page=True)

    page.click("#submit")
    page.wait_for_url("**/#/searches/*")
    search_id = page.url.rsplit("/", 1)[-1]
    search = lab_client.get_search(search_id)
    assert search["space"]["optimizer.lr"] == {"loguniform": [0.01, 0.3]}
    assert search["space"]["batch_size"] == {"choice": [32, 64]}
    assert search["pruner"]["name"] == "asha" and search["sampler"] == "random"
    assert search["num_trials"] == TRIALS and search["max_concurrent_trials"] == 1

    # Trials appear as they start; pausing starts no new one, resuming goes on.
    expect(page.locator("#trials-table tbody tr").first).to_be_visible()
    page.click("#pause-search")
    expect(page.locator("#resume-search")).to_be_visible()
    expect(page.locator("#pause-search")).to_be_hidden()
    expect(page.locator(".toolbar .badge")).to_have_text("paused", timeout=60_000)
    assert lab_client.get_search(search_id)["status"] == "paused"
    page.click("#resume-search")
    expect(page.locator(".toolbar .badge")).not_to_have_text("paused")
    expect(page.locator("#pause-search, #cancel-search").first).to_be_visible()
    expect(page.locator(".toolbar .badge")).to_have_text("succeeded", timeout=120_000)

    done = lab_client.get_search(search_id)
    expect(page.locator("#trials-table tbody tr")).to_have_count(len(done["trials"]))
    # Parallel coordinates: one polyline per trial; the lr axis is logarithmic.
    expect(page.locator("#parallel polyline.trial-line")).to_have_count(len(done["trials"]))
    expect(page.locator("#parallel")).to_contain_text("lr (log)")
    epochs = sum(t["epoch"] or 0 for t in done["trials"])
    expect(page.locator("#trial-curves")).to_have_attribute("data-points", str(epochs))
    for t in done["trials"]:
        row = page.locator(f"#trials-table tr[data-job='{t['job_id']}']")
        expect(row).to_have_attribute("data-status", t["status"])
        if t["status"] == "pruned":
            expect(row).to_contain_text(f"pruned at epoch {t['pruned_epoch']} by asha")
    if done["best_job_id"]:
        expect(page.locator("#best-trial")).to_have_attribute(
            "href", f"#/jobs/{done['best_job_id']}"
        )
    expect(page.locator("#retry-search")).to_be_hidden()
    page.screenshot(path=artifacts / "sampled-search.png", full_page=True)


FAKE = "f" * 32
PARAMS = [(0.002, 32, 0.1), (0.02, 64, 0.3), (0.2, 32, 0.0), (0.05, 64, 0.2)]


def _trial(i: int, status: str, epochs: int, score: float | None, **extra: Any) -> dict[str, Any]:
    lr, batch, dropout = PARAMS[i]
    return {
        "job_id": f"{i}" * 32,
        "index": i,
        "params": {"optimizer.lr": lr, "batch_size": batch, "model.dropout": dropout},
        "status": status,
        "epoch": epochs,
        "val_accuracy": score,
        "val_loss": None,
        "score": score,
        "test_accuracy": None,
        "seconds": 1.5 * epochs,
        "error_type": extra.get("error_type"),
        "pruned_epoch": extra.get("pruned_epoch"),
        "error_message": None,
    }


def _fake_search() -> dict[str, Any]:
    trials = [
        _trial(0, "succeeded", 3, 0.81),
        _trial(1, "pruned", 2, 0.42, error_type="pruned", pruned_epoch=2),
        _trial(2, "failed", 2, 0.2, error_type="diverged"),
        _trial(3, "succeeded", 3, 0.86),
    ]
    return {
        "id": FAKE,
        "status": "succeeded",
        "base": {
            "dataset": "mnist",
            "epochs": 3,
            "batch_size": 64,
            "model": {"arch": "cnn", "channels": [16, 32]},
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        },
        "grid": {},
        "space": {
            "optimizer.lr": {"loguniform": [0.001, 0.3]},
            "batch_size": {"choice": [32, 64]},
            "model.dropout": {"uniform": [0.0, 0.5]},
        },
        "sampler": "tpe",
        "num_trials": 4,
        "seed": 0,
        "pruner": {"name": "asha", "min_epochs": 1, "reduction_factor": 3},
        "max_concurrent_trials": 2,
        "metric": "val_accuracy",
        "mode": "max",
        "paused": False,
        "trials": trials,
        # Not the highest score: the page must show the server's choice, never its own.
        "best_job_id": trials[0]["job_id"],
        "test_accuracy": 0.8,
        "cancel_requested": False,
        "created_at": "2024-01-01T00:00:00Z",
        "finished_at": "2024-01-01T00:01:00Z",
        # What the server allows an ended search with a failed trial: the page shows these.
        "actions": ["retry", "delete"],
    }


def test_pruned_trials_and_the_servers_best_on_a_fabricated_search(
    signed_in: Page, artifacts: Path
) -> None:
    """Every route the page calls answers a fabricated ended search, so each way a trial can end
    is on the page at once, without training anything."""
    search = _fake_search()
    metric_calls: list[str] = []

    def metrics(route: Route) -> None:
        job_id = route.request.url.split("/")[-2]
        metric_calls.append(job_id)
        trial = next(t for t in search["trials"] if t["job_id"] == job_id)
        rows = [
            {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e, "val_accuracy": 0.3 + 0.1 * e}
            | {"seconds": 1.0, "images_per_second": 1000.0}
            for e in range(1, trial["epoch"] + 1)
        ]
        route.fulfill(json=rows)

    def events(route: Route) -> None:
        lines = [f"event: trial\ndata: {json.dumps(t)}\n\n" for t in search["trials"]]
        lines.append(f"event: status\ndata: {json.dumps(search)}\n\n")
        route.fulfill(body="".join(lines), headers={"Content-Type": "text/event-stream"})

    page = signed_in
    page.route(f"**/v1/searches/{FAKE}", lambda route: route.fulfill(json=search))
    page.route(f"**/v1/searches/{FAKE}/events", events)
    page.route("**/v1/jobs/*/metrics", metrics)
    page.goto(f"/#/searches/{FAKE}")

    pruned = page.locator(f"#trials-table tr[data-job='{'1' * 32}']")
    expect(pruned).to_contain_text("pruned at epoch 2 by asha")
    expect(pruned.locator(".badge")).to_have_text("pruned")
    failed = page.locator(f"#trials-table tr[data-job='{'2' * 32}']")
    expect(failed).to_contain_text("failed: diverged")
    # The best trial is the server's best_job_id, not the highest score on the page.
    expect(page.locator("#best-trial")).to_have_attribute("href", f"#/jobs/{'0' * 32}")
    expect(page.locator("#best-score")).to_have_text("81.00%")
    expect(page.locator("#trials-table tr.best")).to_have_attribute("data-job", "0" * 32)
    # Ended with a failed trial: only retry (and the CSV) are offered.
    expect(page.locator("#retry-search")).to_be_visible()
    for gone in ("#pause-search", "#resume-search", "#cancel-search"):
        expect(page.locator(gone)).to_be_hidden()
    expect(page.locator("#trials-csv")).to_have_attribute("href", f"/v1/searches/{FAKE}/trials.csv")
    expect(page.locator("#heatmap")).to_have_count(0)

    # Parallel coordinates: a line per trial over three params and the score, lr on a log axis.
    lines = page.locator("#parallel polyline.trial-line")
    expect(lines).to_have_count(4)
    expect(page.locator("#parallel")).to_have_attribute("data-lines", "4")
    points = lines.evaluate_all("ls => ls.map(l => l.getAttribute('points'))")
    assert all(len(p.split()) == 4 for p in points), points
    expect(page.locator("#parallel")).to_contain_text("lr (log)")
    expect(page.locator("#parallel polyline.pruned")).to_have_attribute("stroke-dasharray", "6 4")
    # Every trial's curve on one chart: the pruned one cut short at its epoch, and dashed.
    expect(page.locator("#trial-curves")).to_have_attribute("data-points", str(3 + 2 + 2 + 3))
    dashed = page.locator("#trial-curves polyline[stroke-dasharray='6 4']")
    expect(dashed).to_have_count(1)
    assert len((dashed.get_attribute("points") or "").split()) == 2
    expect(page.locator("#trial-curves .legend")).to_contain_text("(pruned)")
    # Each trial's metrics were fetched once.
    assert sorted(metric_calls) == sorted(t["job_id"] for t in search["trials"]), metric_calls
    page.screenshot(path=artifacts / "search-pruned.png", full_page=True)
