"""The Datasets pages in chromium: upload an archive of real images through the page (the bytes
stream with progress, then the worker's ingest), open the dataset, see its images per class and
split, its sample grid and report; the new-run form offers it."""

from __future__ import annotations

import io
import tarfile
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


def _fashion_folder(root: Path) -> Path:
    """A folder of real Fashion-MNIST PNGs in class folders, as a user keeps them: a unicode class
    name, a unicode file name and one file name too long for a tar header's name field."""
    write_class_folders(root, per_class=8, classes=(0, 1, 5), names=FOLDER_CLASSES)
    sandals = root / "sandale-été"
    (sandals / "0000.png").rename(sandals / ("sandal-" + "x" * 110 + ".png"))
    (sandals / "0001.png").rename(sandals / "sandale-d’été.png")
    return root


FOLDER_CLASSES = ["t-shirt", "trouser", "sandale-été"]


def test_upload_a_folder_of_class_folders(
    signed_in: Page, lab_client: Client, artifacts: Path, tmp_path: Path
) -> None:
    """A folder picked in the page goes up as one tar the page builds (long and unicode names
    kept); the worker decodes it into the right classes and counts."""
    page = signed_in
    folder = _fashion_folder(tmp_path / "my-fashion")
    page.click("nav a[href='#/datasets']")
    page.fill("#dataset-name", "fashion-folder")
    # Chromium's picker for a `webkitdirectory` input, given the folder itself.
    page.set_input_files("#dataset-folder", str(folder))
    done = page.locator("#upload-done")
    expect(done).to_contain_text("fashion-folder@1 is ready", timeout=120_000)

    # The list of datasets is read again once it is decoded.
    expect(page.locator("#datasets tr[data-dataset='fashion-folder']")).to_contain_text("ready")
    page.screenshot(path=artifacts / "datasets-upload.png", full_page=True)

    version = lab_client.dataset("fashion-folder@1")
    assert version["classes"] == sorted(FOLDER_CLASSES)
    report = version["report"]
    assert report["images"] == 24
    assert report["skipped"] == []
    assert {c: sum(n.values()) for c, n in report["counts"].items()} == dict.fromkeys(
        FOLDER_CLASSES, 8
    )
    page.click("#uploaded-dataset")
    expect(page.locator("li[data-class='sandale-été']")).to_contain_text("/")
    page.screenshot(path=artifacts / "dataset-folder.png", full_page=True)


def test_a_dropped_folder_goes_up_as_one_tar(signed_in: Page) -> None:
    """Files in folders dropped on the page (a DataTransfer of FileSystemEntry trees, as
    Chromium gives a dropped folder) are walked and packed with their paths; the same tar
    writer's output read back by Python's tarfile, as the server reads an upload."""
    page = signed_in
    page.click("nav a[href='#/datasets']")
    long_ascii = "deep/" + "/".join(["folder" * 5] * 4) + "/image.png"  # > 100 bytes, has "/"
    one_long_name = "cls/" + "n" * 140 + ".png"  # a file name no ustar field holds
    members = {
        "parts/bolt/a.png": b"\x89PNG" + bytes(range(256)) * 3,
        "parts/nut/écrou-ü.png": b"",
        "parts/" + long_ascii: b"x" * 512,
        "parts/" + one_long_name: b"y" * 513,
    }
    packed = page.evaluate(
        """async (members) => {
            const { tarBlob } = await import("/static/tar.js");
            const { dropped } = await import("/static/folder-files.js");
            // A FileSystemEntry tree the way a drop gives one.
            const dir = (name, children) => ({ name, isFile: false, isDirectory: true,
              createReader() { let left = children; return { readEntries(ok) {
                const batch = left; left = []; setTimeout(() => ok(batch)); } }; } });
            const file = (name, bytes) => ({ name, isFile: true, isDirectory: false,
              file(ok) { ok(new File([new Uint8Array(bytes)], name, { lastModified: 1e12 })); } });
            const tree = {};
            for (const [path, bytes] of Object.entries(members)) {
              const parts = path.split("/");
              let node = tree;
              for (const p of parts.slice(0, -1)) node = node[p] ??= {};
              node[parts.at(-1)] = bytes;
            }
            const build = (name, node) => Array.isArray(node) ? file(name, node)
              : dir(name, Object.entries(node).map(([k, v]) => build(k, v)));
            const transfer = { files: [], items: [{ kind: "file",
              webkitGetAsEntry: () => build("parts", tree.parts) }] };
            const what = await dropped(transfer);
            const bytes = new Uint8Array(await tarBlob(what.entries).arrayBuffer());
            return { folders: what.folders, paths: what.entries.map((e) => e.path),
              tar: Array.from(bytes) };
        }""",
        {k: list(v) for k, v in members.items()},
    )
    assert packed["folders"] is True
    assert sorted(packed["paths"]) == sorted(members)
    data = bytes(packed["tar"])
    assert len(data) % 512 == 0
    read: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:  # streamed, as the server reads
        for member in tf:
            assert member.isfile(), member.name
            f = tf.extractfile(member)
            read[member.name] = f.read() if f else b""
    assert read == members
