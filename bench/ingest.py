"""Your own images: ingesting an uploaded archive, and training on what it gives, against what a
user would write with torchvision, in one run.

The dataset is made here: 10,000 real Fashion-MNIST images (1,000 per class) written as JPEGs
of mixed sizes (each side 24–96 px), in class folders, zipped.

1. ``ingest``: :func:`cnnlab.datasets.ingest.ingest` on the zip (reading it, decoding, resizing,
   deduplicating, splitting, reporting), images/s; against one pass of torchvision's
   ``ImageFolder`` over the same files, unpacked, decoding and resizing each to the same size
   (``Resize`` + ``CenterCrop``, as ingest's default ``center_crop``). Also shown: ingest in
   this process alone (no decoding helper), and the same ``ImageFolder`` pass through
   ``DataLoader(num_workers=2)``.
2. ``training``: seconds per training epoch of the lab's ``cnn`` on the ingested uint8 tensors
   the way cnnlab trains (:func:`cnnlab.engine.loop.run_epoch`), against the loop a user would
   write: ``ImageFolder`` + ``Resize`` + ``CenterCrop`` + ``ToTensor`` + ``Normalize`` +
   ``DataLoader(num_workers=2)``, shuffled each epoch (plus ``Grayscale`` when the images are
   grey, so both train the same network). Both see the same files, split, scaling to 0..1 and
   per-channel mean and std (ingest's, of the training part), network, initial weights,
   optimiser, batch size (the last, smaller batch kept), epochs and order of the images each
   epoch (the user loop's sampler draws cnnlab's permutation), and are scored on the same
   held-out files (the test part) after the last epoch: the accuracy difference measures the
   pipelines alone. Both resize with antialiased bilinear filtering; ingest scales the central
   square, torchvision scales then crops, so their pixels differ by a fraction of a pixel's
   shift (a few levels of 255 on average). Each side runs in its own process, as each would
   (cnnlab's with its worker's thread and allocator settings); an epoch's seconds are its
   training pass alone.
3. ``upload``: ``GET /healthz`` latency (p50, p99, most) from a ``cnnlab api`` process while a
   1 GiB body streams into ``POST /v1/datasets`` (written to a file, hashed, then stored in the
   database), against the same requests to the idle process; and the upload's MiB/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.reference import DEBIAN_FASHION_MNIST
from bench.runner import ProcessRun, RunFailed, run_timed
from bench.service import running_stack
from cnnlab.architectures.registry import create_architecture
from cnnlab.spec.train import TrainSpec
from cnnlab.threads import yield_idle_threads

PER_CLASS = 1000
CLASSES = 10
MIN_SIDE, MAX_SIDE = 24, 96
BATCH_SIZE = 128
LEARNING_RATE = 0.05
MOMENTUM = 0.9
UPLOAD_BYTES = 2**30
WARM_UP_S = 15.0


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


def _image_folder(
    root: Path, size: int, grey: bool, standardise: tuple[list[float], list[float]] | None
) -> Any:
    """``ImageFolder`` of the files at ``size``: uint8 tensors, or (``standardise``: mean, std)
    floats from ``ToTensor`` + ``Normalize(mean, std)``, as a training loop feeds a network."""
    from torchvision import datasets, transforms

    steps: list[Any] = [transforms.Resize(size), transforms.CenterCrop(size)]
    if grey:
        steps.append(transforms.Grayscale(1))
    if standardise is None:
        steps.append(transforms.PILToTensor())
    else:
        steps += [transforms.ToTensor(), transforms.Normalize(*standardise)]
    return datasets.ImageFolder(str(root), transform=transforms.Compose(steps))


def _time_image_folder(root: Path, size: int, grey: bool) -> float:
    dataset = _image_folder(root, size, grey, None)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - start


def _time_loader(root: Path, size: int, grey: bool) -> float:
    from torch.utils.data import DataLoader

    dataset = _image_folder(root, size, grey, None)
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
        print(f"  ingest, no helper process: {single[-1]:.2f}s{tag}", flush=True)
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
        "ingest_one_process_images_per_second": n / best["single"],
        "image_folder_seconds": best["folder"],
        "image_folder_images_per_second": n / best["folder"],
        "image_folder_two_workers_images_per_second": n / min(loader),
        "speedup": best["folder"] / best["ingest"],
        "helpers_gain": best["single"] / best["ingest"],
        "all_seconds": {"ingest": ours, "one_process": single, "image_folder": folder},
    }
    return result, ingested


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _epoch_record(epoch: int, seconds: float, images: int, accuracy: float) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "seconds": seconds,
        "images_per_second": images / seconds,
        "val_accuracy": accuracy,
    }


def train_cnnlab(cache: Path, epochs: int, device_name: str, seed: int) -> None:
    """cnnlab's way, as a worker runs it: the ingested uint8 tensors on the device,
    the engine's epoch loop (batches sliced, normalised there, channels-last)."""
    yield_idle_threads()  # before torch loads, as cnnlab's processes do
    import torch

    from cnnlab.datasets.ingest import load_ingested
    from cnnlab.datasets.loading import ImageSet
    from cnnlab.engine.loop import Lane, Normalize, Recipe, evaluate, run_epoch
    from cnnlab.engine.training import keep_freed_memory, resolve_device, single_step

    keep_freed_memory()
    ingested = load_ingested(cache)
    device = resolve_device(device_name)
    train, held = ingested.split == 0, ingested.split != 0
    data = ImageSet(ingested.images[train], ingested.labels[train]).to(device)
    val = ImageSet(ingested.images[held], ingested.labels[held]).to(device)
    normalize = Normalize({"mean": ingested.mean, "std": ingested.std}, device)
    shape = (ingested.channels, ingested.image_size, ingested.image_size)
    torch.manual_seed(seed)
    model = create_architecture("cnn", in_shape=shape, num_classes=len(ingested.classes))
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    # The spec only carries the loop's settings (batch size, seed, no augmentation).
    spec = TrainSpec.model_validate(
        {
            "dataset": "mnist",
            "batch_size": BATCH_SIZE,
            "seed": seed,
            "optimizer": {"lr": LEARNING_RATE, "momentum": MOMENTUM},
        }
    )
    recipe = Recipe.of(spec, normalize, data.labels, len(ingested.classes))
    lane = Lane(
        seed=seed,
        base_lr=LEARNING_RATE,
        train_idx=torch.arange(len(data), device=device),
        stop=lambda: False,
        optimizer=optimizer,
    )
    step = single_step(model, recipe)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()  # as fit does: evaluate leaves it in evaluation mode
        run_epoch([lane], data, recipe, step, epoch=epoch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        _, accuracy = evaluate(model, val, normalize)
        _emit(_epoch_record(epoch, seconds, len(data), accuracy))
    _emit({"train_images": len(data), "val_images": len(val)})


class _SameOrder:
    """A shuffling sampler that visits the training images in cnnlab's order for each epoch
    (:func:`cnnlab.engine.loop.run_epoch`: a permutation seeded by the seed and the epoch)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        import torch

        from cnnlab.engine.loop import epoch_seed

        self.epoch += 1
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())


def train_user_loop(root: Path, cache: Path, epochs: int, device_name: str, seed: int) -> None:
    """The loop a user would write on the same files: ``ImageFolder`` + ``Resize`` +
    ``CenterCrop`` + ``ToTensor`` + ``Normalize`` (the training part's mean and std, as cnnlab
    standardises) + ``DataLoader(num_workers=2)``, the same network and batch size."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset

    from cnnlab.datasets.ingest import load_ingested

    ingested = load_ingested(cache)  # only which files are training and which validation
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device_name)
    size, grey = ingested.image_size, ingested.channels == 1
    dataset = _image_folder(root, size, grey, (ingested.mean, ingested.std))
    position = {Path(p).relative_to(root).as_posix(): i for i, (p, _) in enumerate(dataset.samples)}
    split = ingested.split.tolist()
    train_idx = [position[f] for f, s in zip(ingested.files, split, strict=True) if s == 0]
    val_idx = [position[f] for f, s in zip(ingested.files, split, strict=True) if s != 0]
    # ImageFolder's classes are its sorted folder names: the same order as ingest's. Shuffled
    # as ``shuffle=True`` would, each epoch, but in cnnlab's order: both see the very same
    # batches, so the order's luck is no part of the accuracy difference.
    train_loader = DataLoader(
        Subset(dataset, train_idx),
        batch_size=BATCH_SIZE,
        sampler=_SameOrder(len(train_idx), seed),
        num_workers=2,
    )
    val_loader = DataLoader(Subset(dataset, val_idx), batch_size=BATCH_SIZE, num_workers=2)
    torch.manual_seed(seed)
    shape = (ingested.channels, size, size)
    model = create_architecture("cnn", in_shape=shape, num_classes=len(ingested.classes)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
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
        seconds = time.perf_counter() - start
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
        _emit(_epoch_record(epoch, seconds, len(train_idx), correct / len(val_idx)))
    _emit({"train_images": len(train_idx), "val_images": len(val_idx)})


def _training_part(
    root: Path, cache: Path, epochs: int, device: str, repeat: int, seed: int
) -> dict[str, Any]:
    """Each side in its own process (as each would run), alternated; the best of ``repeat``."""
    common = ["--epochs", str(epochs), "--device", device, "--seed", str(seed)]
    user_cmd = [sys.executable, "-m", "bench.ingest", "user", str(root), str(cache), *common]
    our_cmd = [sys.executable, "-m", "bench.ingest", "cnnlab", str(cache), *common]
    users: list[ProcessRun] = []
    ours: list[ProcessRun] = []
    for i in range(repeat):
        tag = f" (run {i + 1}/{repeat})" if repeat > 1 else ""
        print(f"user loop, {epochs} epochs, device {device}{tag}:", flush=True)
        users.append(run_timed("user loop", user_cmd, {}))
        print(f"cnnlab, {epochs} epochs, device {device}{tag}:", flush=True)
        ours.append(run_timed("cnnlab", our_cmd, {}))

    def epoch_seconds(run: ProcessRun) -> float:
        return statistics.mean(e["seconds"] for e in run.epochs)

    user, our = min(users, key=epoch_seconds), min(ours, key=epoch_seconds)
    user_acc, our_acc = user.epochs[-1]["val_accuracy"], our.epochs[-1]["val_accuracy"]
    return {
        "device": device,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "train_images": our.summary.get("train_images"),
        "cnnlab": {"epochs": our.epochs, "val_accuracy": our_acc},
        "user_loop": {"epochs": user.epochs, "val_accuracy": user_acc},
        "cnnlab_epoch_seconds": epoch_seconds(our),
        "user_loop_epoch_seconds": epoch_seconds(user),
        "speedup": epoch_seconds(user) / epoch_seconds(our),
        "val_accuracy_difference": our_acc - user_acc,
    }


def _healthz_latencies(http: Any, until: Callable[[], bool], most: int = 100_000) -> list[float]:
    """Seconds per ``GET /healthz``, one after another (10 ms apart) until ``until()``."""
    out: list[float] = []
    while not until() and len(out) < most:
        start = time.perf_counter()
        if http.get("/healthz").status_code != 200:
            raise RunFailed("/healthz did not answer 200")
        out.append(time.perf_counter() - start)
        time.sleep(0.01)
    return out


def _latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {
        "requests": len(ms),
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "max_ms": ms[-1],
    }


def _upload_part(upload_bytes: int = UPLOAD_BYTES) -> dict[str, Any]:
    """/healthz while a big upload streams in, against the idle API, in one stack."""
    chunk = np.random.default_rng(0).integers(0, 256, 2**20, dtype=np.uint8).tobytes()

    def body() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(upload_bytes // len(chunk)):
            yield chunk

    with running_stack(None) as service, httpx.Client(base_url=service.url) as http:
        time.sleep(WARM_UP_S)  # a starting API imports torch in a thread for seconds
        answer: list[Any] = []

        def send() -> None:
            with service.client() as client:
                start = time.perf_counter()
                r = client.post(
                    "/v1/datasets",
                    params={"name": "big"},
                    content=body(),
                    headers={"Content-Type": "application/zip"},
                )
                answer.extend([r.status_code, time.perf_counter() - start])

        sender = threading.Thread(target=send)
        sender.start()
        busy = _healthz_latencies(http, lambda: not sender.is_alive())
        sender.join()
        idle_until = time.perf_counter() + 5.0
        idle = _healthz_latencies(http, lambda: time.perf_counter() > idle_until)
    if not answer or answer[0] != 202:
        raise RunFailed(f"the upload answered {answer[:1]}")
    return {
        "upload_bytes": upload_bytes,
        "upload_seconds": answer[1],
        "upload_mib_per_second": upload_bytes / 2**20 / answer[1],
        "healthz_idle": _latency_summary(idle),
        "healthz_during_upload": _latency_summary(busy),
    }


def run(
    source: Path = DEBIAN_FASHION_MNIST,
    device: str = "auto",
    epochs: int = 2,
    repeat: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    from cnnlab.datasets.ingest import save_ingested

    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-ingest-") as tmp:
        root = Path(tmp) / "images"
        print(
            f"making {PER_CLASS * CLASSES:,} JPEGs ({MIN_SIDE}–{MAX_SIDE} px a side)…", flush=True
        )
        archive = make_dataset(root, source, seed)
        archive_bytes = archive.stat().st_size
        print("ingest against an ImageFolder pass:", flush=True)
        ingest_result, ingested = _ingest_part(archive, root, repeat)
        cache = Path(tmp) / "ingested.pt"
        save_ingested(ingested, cache)
        del ingested
        training = _training_part(root, cache, epochs, device, repeat, seed)
    print("GET /healthz while 1 GiB streams into POST /v1/datasets:", flush=True)
    upload = _upload_part()
    return {
        "benchmark": "ingest",
        "archive_bytes": archive_bytes,
        "ingest": ingest_result,
        "training": training,
        "upload": upload,
    }


def report(result: dict[str, Any]) -> None:
    ing, tr = result["ingest"], result["training"]
    print()
    print(
        f"ingest: {ing['images']:,} JPEGs to {ing['channels']}×{ing['image_size']}×"
        f"{ing['image_size']} uint8"
    )
    print(f"  ingest (zip, both cores)          {ing['ingest_images_per_second']:>9,.0f} images/s")
    print(
        f"  ingest (zip, one process)         {ing['ingest_one_process_images_per_second']:>9,.0f}"
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
    print(f"  helpers' gain (both / one):          {ing['helpers_gain']:.2f}×")
    print()
    print(
        f"training: cnn, batch {tr['batch_size']}, {tr['train_images']:,} training images, "
        f"{tr['epochs']} epochs, device {tr['device']}"
    )
    for name, key in (("user loop", "user_loop"), ("cnnlab", "cnnlab")):
        seconds = ", ".join(f"{e['seconds']:.2f}" for e in tr[key]["epochs"])
        print(f"  {name:<10} epoch seconds {seconds}; val accuracy {tr[key]['val_accuracy']:.4f}")
    print(f"  speedup per epoch (user loop / cnnlab): {tr['speedup']:.2f}×")
    print(f"  val accuracy difference (cnnlab − user loop): {tr['val_accuracy_difference']:+.4f}")
    up = result["upload"]
    print()
    print(
        f"upload: {up['upload_bytes'] / 2**30:.1f} GiB in {up['upload_seconds']:.1f}s "
        f"({up['upload_mib_per_second']:,.0f} MiB/s)"
    )
    for name, key in (("idle", "healthz_idle"), ("during upload", "healthz_during_upload")):
        h = up[key]
        print(
            f"  GET /healthz, {name:<14} p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, "
            f"most {h['max_ms']:.1f} ms ({h['requests']} requests)"
        )


def main(argv: list[str] | None = None) -> None:
    """One side of the training comparison, in its own process (:func:`run` starts them)."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("side", choices=["cnnlab", "user"])
    parser.add_argument("paths", nargs="+", type=Path, help="cnnlab: CACHE; user: ROOT CACHE")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.side == "cnnlab":
        train_cnnlab(args.paths[0], args.epochs, args.device, args.seed)
    else:
        train_user_loop(args.paths[0], args.paths[1], args.epochs, args.device, args.seed)


if __name__ == "__main__":
    main()
