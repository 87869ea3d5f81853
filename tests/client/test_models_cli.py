"""``cnnlab models …``, ``cnnlab predict --model`` and ``cnnlab jobs --tag`` as a user runs them,
against a service whose worker runs the evaluations, comparisons and batch predictions."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from cnnlab.client import Client
from cnnlab.testing.stack import Stack
from tests.utils.datasets import patterned_images
from tests.utils.service import cnnlab_cli


def _ok(stack: Stack, token: str, *args: str) -> str:
    out = cnnlab_cli(stack, *args, token=token)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def test_the_registry_from_the_command_line(
    stack: Stack, token: str, client: Client, finished_job: dict[str, Any], tmp_path: Path
) -> None:
    job_id = finished_job["id"]
    assert "cli-digits version 1 (production)" in _ok(
        stack, token, "models", "register", "cli-digits", job_id, "--alias", "production"
    )
    _ok(stack, token, "models", "register", "cli-digits", job_id)
    assert "cli-digits@candidate → version 2" in _ok(
        stack, token, "models", "alias", "cli-digits", "candidate", "2"
    )
    listed = _ok(stack, token, "models", "list")
    assert "cli-digits" in listed and "production→1" in listed
    shown = json.loads(_ok(stack, token, "models", "show", "cli-digits", "--json"))
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["versions"][0]["environment"]["torch"]

    evaluation = _ok(
        stack, token, "models", "evaluate", "cli-digits@production", "--dataset", "mnist"
    )
    assert "accuracy" in evaluation and "PRECISION" in evaluation
    compared = _ok(
        stack, token, "models", "compare", "cli-digits", "production", "2", "--dataset", "mnist"
    )
    assert compared.strip().endswith("no evidence of a difference")  # the same weights

    images, _ = patterned_images(3, (28, 28), seed=5)
    archive = tmp_path / "images.zip"
    paths = []
    with zipfile.ZipFile(archive, "w") as zf:
        for i, image in enumerate(images):
            path = tmp_path / f"img{i}.png"
            Image.fromarray(image).save(path)
            paths.append(str(path))
            zf.write(path, f"img{i}.png")
    out = tmp_path / "results.csv"
    summary = _ok(
        stack, token, "models", "predict-batch", "cli-digits", str(archive), "-o", str(out)
    )
    assert "3 rows (0 skipped)" in summary
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["file"] for r in rows] == ["img0.png", "img1.png", "img2.png"]

    predicted = _ok(stack, token, "predict", "--model", "cli-digits@candidate", *paths)
    assert predicted.splitlines()[0] == "cli-digits version 2 (candidate)"
    assert [r["class"] for r in rows] == [line.split()[1] for line in predicted.splitlines()[2:]]

    client.update_job(job_id, tags=["cli-tagged"])
    tagged = json.loads(_ok(stack, token, "jobs", "--tag", "cli-tagged", "--json"))
    assert [j["id"] for j in tagged] == [job_id]
