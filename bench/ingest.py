"""Your own images: ingesting an uploaded archive, and training on what it gives, against what a
user would write with torchvision, in one run.

The dataset is made here: 10,000 real Fashion-MNIST images (1,000 per class) written as JPEGs
of mixed sizes (each side 24–96 px), in class folders, zipped.

1. ``ingest``: :func:`cnnlab.datasets.ingest.ingest` on the zip (reading it, decoding, resizing,
   deduplicating, splitting, reporting), images/s; against one pass of torchvision's
   ``ImageFolder`` over the same files, unpacked, decoding and resizing each to the same size
   (``Resize`` + ``CenterCrop``, as ingest's default ``center_crop``). Also shown: ingest with
   one decoding thread, and the same ``ImageFolder`` pass through ``DataLoader(num_workers=2)``.
2. ``training``: seconds per training epoch of the lab's ``cnn`` on the ingested uint8 tensors
   the way cnnlab trains (:func:`cnnlab.engine.training.train_one_epoch`), against the loop a
   user would write: ``ImageFolder`` + ``Resize`` + ``ToTensor`` + ``DataLoader(num_workers=2)``
   (plus ``Grayscale`` when the images are grey, so both train the same network); same
   network, initial weights, optimiser, batch size and training files; validation accuracy on
   the same held-out files after the last epoch.
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.reference import DEBIAN_FASHION_MNIST

PER_CLASS = 1000
CLASSES = 10
MIN_SIDE, MAX_SIDE = 24, 96
BATCH_SIZE = 128
LEARNING_RATE = 0.05
MOMENTUM = 0.9


def _idx(path: Path, ndim: int) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_dataset(folder: Path, source: Path = DEBIAN_FASHION_MNIST, seed: int = 0) -> Path:
    """The class folders of JPEGs (``folder/<class>/<n>.jpg``) and their zip; returns the zip."""
    from PIL import Image

    images = _idx(source / "train-images-idx3-ubyte.gz", 3)
    labels = _idx(source / "train-labels-idx1-ubyte.gz", 1)
    rng = np.random.default_rng(seed)
    jobs: list[tuple[np.ndarray, tuple[int, int], Path]] = []
    for c in range(CLASSES):
        (folder / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for n, i in enumerate(np.flatnonzero(labels == c)[:PER_CLASS]):
            w, h = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
            jobs.append((images[i], (w, h), folder / f"class_{c}" / f"{n:04d}.jpg"))

    def write(job: tuple[np.ndarray, tuple[int, int], Path]) -> None:
        pixels, wh, path = job
        im = Image.fromarray(pixels, "L").resize(wh, Image.Resampling.BICUBIC)
        im.save(path, format="JPEG", quality=90)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, jobs))
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for _, _, path in jobs:
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


def _time_ingest(archive: Path, workers: int | None) -> tuple[float, Any]:
    from cnnlab.datasets.ingest import IngestOptions, ingest

    start = time.perf_counter()
    result = ingest(archive, IngestOptions(workers=workers))
    return time.perf_counter() - start, result


def _image_folder(root: Path, size: int, grey: bool, to_tensor: bool) -> Any:
    from torchvision import datasets, transforms

    steps: list[Any] = [transforms.Resize(size), transforms.CenterCrop(size)]
    if grey:
        steps.append(transforms.Grayscale(1))
    steps.append(transforms.ToTensor() if to_tensor else transforms.PILToTensor())
    return datasets.ImageFolder(str(root), transform=transforms.Compose(steps))


def _time_image_folder(root: Path, size: int, grey: bool) -> float:
    dataset = _image_folder(root, size, grey, to_tensor=False)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - start


def _time_loader(root: Path, size: int, grey: bool) -> float:
    from torch.utils.data import DataLoader

    dataset = _image_folder(root, size, grey, to_tensor=False)
    start = time.perf_counter()
    for _ in DataLoader(dataset, batch_size=256, num_workers=2):
        pass
    return time.perf_counter() - start


def _ingest_part(archive: Path, root: Path, repeat: int) -> tuple[dict[str, Any], Any]:
    n = PER_CLASS * CLASSES
    ours, single, folder, loader = [], [], [], []
    ingested = None
    for i in range(repeat):
        tag = f" (run {i + 1}/{repeat})" if repeat > 1 else ""
        seconds, ingested = _time_ingest(archive, None)
        ours.append(seconds)
        print(f"  ingest: {seconds:.2f}s{tag}", flush=True)
        size, grey = ingested.image_size, ingested.channels == 1
        folder.append(_time_image_folder(root, size, grey))
        print(f"  ImageFolder pass: {folder[-1]:.2f}s{tag}", flush=True)
        single.append(_time_ingest(archive, 1)[0])
        print(f"  ingest, one thread: {single[-1]:.2f}s{tag}", flush=True)
        loader.append(_time_loader(root, size, grey))
        print(f"  ImageFolder, DataLoader(num_workers=2): {loader[-1]:.2f}s{tag}", flush=True)
    assert ingested is not None
    best = {k: min(v) for k, v in (("ingest", ours), ("single", single), ("folder", folder))}
    result = {
        "images": n,
        "image_size": ingested.image_size,
        "channels": ingested.channels,
        "ingest_seconds": best["ingest"],
        "ingest_images_per_second": n / best["ingest"],
        "ingest_one_thread_images_per_second": n / best["single"],
        "image_folder_seconds": best["folder"],
        "image_folder_images_per_second": n / best["folder"],
        "image_folder_two_workers_images_per_second": n / min(loader),
        "speedup": best["folder"] / best["ingest"],
        "threads_gain": best["single"] / best["ingest"],
        "all_seconds": {"ingest": ours, "one_thread": single, "image_folder": folder},
    }
    return result, ingested


def _our_epochs(ingested: Any, epochs: int, device_name: str, seed: int) -> dict[str, Any]:
    import torch

    from cnnlab.architectures.registry import create_model
    from cnnlab.datasets.loading import ImageSet
    from cnnlab.engine.training import Normalize, evaluate, resolve_device, train_one_epoch

    device = resolve_device(device_name)
    train = ingested.split == 0
    held = ingested.split != 0
    data = ImageSet(ingested.images[train], ingested.labels[train]).to(device)
    val = ImageSet(ingested.images[held], ingested.labels[held]).to(device)
    normalize = Normalize({"mean": ingested.mean, "std": ingested.std}, device)
    shape = (ingested.channels, ingested.image_size, ingested.image_size)
    torch.manual_seed(seed)
    model = create_model("cnn", in_shape=shape, num_classes=len(ingested.classes))
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_one_epoch(
            model, optimizer, data, normalize, batch_size=BATCH_SIZE, epoch=epoch, seed=seed
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        print(f"  cnnlab epoch {epoch}: {seconds[-1]:.2f}s", flush=True)
    _, accuracy = evaluate(model, val, normalize)
    return {"epoch_seconds": seconds, "val_accuracy": accuracy, "train_images": len(data)}


def _user_epochs(
    root: Path, ingested: Any, epochs: int, device_name: str, seed: int
) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset

    from cnnlab.architectures.registry import create_model
    from cnnlab.engine.training import resolve_device

    device = resolve_device(device_name)
    size, grey = ingested.image_size, ingested.channels == 1
    dataset = _image_folder(root, size, grey, to_tensor=True)
    position = {Path(p).relative_to(root).as_posix(): i for i, (p, _) in enumerate(dataset.samples)}
    split = ingested.split.tolist()
    train_idx = [position[f] for f, s in zip(ingested.files, split, strict=True) if s == 0]
    val_idx = [position[f] for f, s in zip(ingested.files, split, strict=True) if s != 0]
    # ImageFolder's classes are its sorted folder names: the same order as ingest's.
    train_loader = DataLoader(
        Subset(dataset, train_idx), batch_size=BATCH_SIZE, shuffle=True, num_workers=2
    )
    val_loader = DataLoader(Subset(dataset, val_idx), batch_size=BATCH_SIZE, num_workers=2)
    shape = (ingested.channels, size, size)
    torch.manual_seed(seed)
    model = create_model("cnn", in_shape=shape, num_classes=len(ingested.classes)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        print(f"  user loop epoch {epoch}: {seconds[-1]:.2f}s", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in val_loader:
            correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
    return {"epoch_seconds": seconds, "val_accuracy": correct / len(val_idx)}


def run(
    source: Path = DEBIAN_FASHION_MNIST,
    device: str = "auto",
    epochs: int = 2,
    repeat: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-ingest-") as tmp:
        root = Path(tmp) / "images"
        print(
            f"making {PER_CLASS * CLASSES:,} JPEGs ({MIN_SIDE}–{MAX_SIDE} px a side)…", flush=True
        )
        archive = make_dataset(root, source, seed)
        archive_bytes = archive.stat().st_size
        print("ingest against an ImageFolder pass:", flush=True)
        ingest_result, ingested = _ingest_part(archive, root, repeat)
        print(f"training epochs, device {device}:", flush=True)
        user = _user_epochs(root, ingested, epochs, device, seed)
        ours = _our_epochs(ingested, epochs, device, seed)
    user_epoch = statistics.mean(user["epoch_seconds"])
    our_epoch = statistics.mean(ours["epoch_seconds"])
    return {
        "benchmark": "ingest",
        "archive_bytes": archive_bytes,
        "ingest": ingest_result,
        "training": {
            "device": device,
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "train_images": ours["train_images"],
            "cnnlab": ours,
            "user_loop": user,
            "cnnlab_epoch_seconds": our_epoch,
            "user_loop_epoch_seconds": user_epoch,
            "speedup": user_epoch / our_epoch,
            "val_accuracy_difference": ours["val_accuracy"] - user["val_accuracy"],
        },
    }


def report(result: dict[str, Any]) -> None:
    ing, tr = result["ingest"], result["training"]
    print()
    print(
        f"ingest: {ing['images']:,} JPEGs to {ing['channels']}×{ing['image_size']}×"
        f"{ing['image_size']} uint8"
    )
    print(f"  ingest (zip, all threads)         {ing['ingest_images_per_second']:>9,.0f} images/s")
    print(
        f"  ingest (zip, one thread)          {ing['ingest_one_thread_images_per_second']:>9,.0f}"
        " images/s"
    )
    print(
        f"  ImageFolder pass (files)          {ing['image_folder_images_per_second']:>9,.0f}"
        " images/s"
    )
    print(
        "  ImageFolder, DataLoader(2 workers)"
        f"{ing['image_folder_two_workers_images_per_second']:>9,.0f} images/s"
    )
    print(f"  speedup (ingest / ImageFolder pass): {ing['speedup']:.2f}×")
    print(f"  threads' gain (all / one):           {ing['threads_gain']:.2f}×")
    print()
    print(
        f"training: cnn, batch {tr['batch_size']}, {tr['train_images']:,} training images, "
        f"{tr['epochs']} epochs, device {tr['device']}"
    )
    for name, key in (("user loop", "user_loop"), ("cnnlab", "cnnlab")):
        seconds = ", ".join(f"{s:.2f}" for s in tr[key]["epoch_seconds"])
        print(f"  {name:<10} epoch seconds {seconds}; val accuracy {tr[key]['val_accuracy']:.4f}")
    print(f"  speedup per epoch (user loop / cnnlab): {tr['speedup']:.2f}×")
    print(f"  val accuracy difference (cnnlab − user loop): {tr['val_accuracy_difference']:+.4f}")
