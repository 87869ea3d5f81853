"""A job trained on an uploaded dataset shows that upload's class names in chromium: its training
images, test confusion matrix and prediction bars, even after a newer version of the dataset with
other classes has been uploaded under the same name."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from cnnlab.client import Client
from tests.utils.image_archives import picture, real_images, write_class_folders

FIRST = ["tee", "trousers", "sandal"]  # Fashion-MNIST classes 0, 1 and 5
SECOND = ["coat", "boot"]


def test_a_job_on_an_upload_speaks_its_class_names(
    signed_in: Page, lab_client: Client, artifacts: Path, tmp_path: Path
) -> None:
    first = write_class_folders(tmp_path / "v1", per_class=12, classes=(0, 1, 5), names=FIRST)
    assert lab_client.upload_dataset(first, name="garments")["status"] == "ready"
    spec = {"dataset": "garments", "val_size": 0.25, "batch_size": 8, "epochs": 2}
    job = lab_client.submit(spec | {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}})
    assert job["spec"]["dataset"] == "garments@1"  # pinned at submit
    assert lab_client.wait(job["id"], timeout=120)["status"] == "succeeded"
    # "garments" now means a version with other classes; the job trained on the first.
    second = write_class_folders(tmp_path / "v2", per_class=6, classes=(4, 9), names=SECOND)
    assert lab_client.upload_dataset(second, name="garments")["version"] == 2

    page = signed_in
    page.goto(f"/#/jobs/{job['id']}")
    expect(page.locator("#samples figcaption").first).to_be_visible()
    assert set(page.locator("#samples figcaption").all_inner_texts()) <= set(FIRST)
    columns = page.locator("#confusion table.confusion th[scope=col]")
    expect(columns).to_have_count(3)
    assert columns.all_inner_texts() == sorted(FIRST)

    (_, sandal), *_ = real_images(1, [5], offset=50)
    path = tmp_path / "sandal.png"
    picture(sandal, 56).save(path)
    page.set_input_files("#image-file", str(path))
    expect(page.locator("#predicted-class")).to_have_text(re.compile("^(" + "|".join(FIRST) + ")$"))
    assert page.locator("#probabilities .name").all_inner_texts() == sorted(FIRST)
    page.screenshot(path=artifacts / "upload-job.png", full_page=True)
