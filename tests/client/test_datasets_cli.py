"""``cnnlab datasets`` and the client's dataset methods, against a service with a worker: a
folder zipped while it streams, decoded by the worker, listed, shown, trained on, deleted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from cnnlab.client import Client
from cnnlab.client._datasets import zip_stream
from cnnlab.testing.stack import Stack
from tests.utils.image_archives import picture, real_images, write_class_folders
from tests.utils.service import cnnlab_cli


def test_a_folder_zips_as_it_streams(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "f", per_class=5, names=["a", "b", "c"])
    path = tmp_path / "out.zip"
    path.write_bytes(b"".join(zip_stream(folder)))
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names[0] == "a/0000.png" and len(names) == 15
        assert archive.read("b/0003.png") == (folder / "b" / "0003.png").read_bytes()


def test_upload_a_folder_then_list_show_train_and_delete(
    stack: Stack, token: str, client: Client, tmp_path: Path
) -> None:
    folder = write_class_folders(tmp_path / "leaves", per_class=10, names=["dry", "ok", "wet"])
    up = cnnlab_cli(
        stack, "datasets", "upload", str(folder), "--name", "leaves", "--image-size", "20",
        token=token,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("leaves@1 ready: 3 classes, 1×20×20"), up.stdout
    assert "classes: dry, ok, wet" in up.stdout

    listed = cnnlab_cli(stack, "datasets", "list", token=token)
    assert any(line.split()[:2] == ["leaves@1", "uploaded"] for line in listed.stdout.splitlines())
    shown = cnnlab_cli(stack, "datasets", "show", "leaves@1", "--json", token=token)
    record = json.loads(shown.stdout)
    assert record["classes"] == ["dry", "ok", "wet"] and record["image_size"] == 20
    assert client.dataset_samples("leaves@1").startswith(b"\x89PNG")

    job = client.submit({"dataset": "leaves", "val_size": 4, "batch_size": 8, "epochs": 1})
    assert client.wait(job["id"], timeout=120)["status"] == "succeeded"
    photo = tmp_path / "photo.png"
    picture(real_images(1, [2], offset=30)[0][1], (64, 48)).save(photo)
    predicted = cnnlab_cli(stack, "predict", job["id"], str(photo), token=token)
    assert predicted.returncode == 0, predicted.stderr
    row = predicted.stdout.splitlines()[1].split()
    assert row[0] == "photo.png" and row[2] in {"dry", "ok", "wet"}
    assert {"dry", "ok", "wet"} & set(predicted.stdout.split()) - {row[2]}  # the runners-up

    second = client.upload_dataset(folder, name="leaves")  # the same bytes: one more version
    assert (second["version"], second["status"]) == (2, "ready")
    assert [v["version"] for v in client.dataset("leaves")["versions"]] == [2, 1]
    gone = cnnlab_cli(stack, "datasets", "delete", "leaves", token=token)
    assert gone.returncode == 0, gone.stderr
    missing = cnnlab_cli(stack, "datasets", "show", "leaves", token=token)
    assert missing.returncode == 1 and "not found" in missing.stderr
