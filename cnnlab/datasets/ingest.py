"""An uploaded archive of labelled pictures to decoded tensors, splits and a report.

:func:`ingest` reads the archive member by member (never extracting it: :mod:`.archives` refuses
hostile input), finds the layout (:mod:`.layouts`), decodes every image once, spread over processes
(:mod:`.decode`, :mod:`.decoders`), then splits (:mod:`.splits`), deduplicates and reports
(:mod:`.report`).
:func:`save_ingested` and :func:`load_ingested` are the workers' decoded cache.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cnnlab.datasets import decode, layouts, report
from cnnlab.datasets.archives import Archive, Entry, Limits
from cnnlab.datasets.decoders import (
    DECODE,
    FINISH,
    FIT,
    OPEN,
    Decoder,
    chunks,
    decoders,
    map_requests,
)
from cnnlab.datasets.layouts import TEST, TRAIN
from cnnlab.datasets.splits import stratified_split
from cnnlab.errors import InvalidDataset

__all__ = [
    "MIN_IMAGES_PER_CLASS",
    "IngestOptions",
    "Ingested",
    "ingest",
    "load_ingested",
    "save_ingested",
    "stratified_split",
]

MIN_IMAGES_PER_CLASS = 5
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 224
DEFAULT_SIZE_CAP = 64
CACHE_FORMAT = 1
# When the images' bytes are at most this many and no size is given, they are held in memory:
# their headers give the default size, then each is decoded once, straight to it.
IN_MEMORY_BYTES, IN_MEMORY_FILES = 512 * 2**20, 100_000


@dataclass(frozen=True)
class IngestOptions:
    image_size: int | None = None  # 16..224; None: median shorter side, capped at 64
    resize: Literal["squash", "center_crop", "pad"] = "center_crop"
    test_size: float = 0.15  # used when the archive has no test/ folder
    seed: int = 0
    # Limits on hostile archives: the defaults of the CNNLAB_DATASET_MAX_* settings, which a
    # worker passes in.
    max_files: int = 200_000
    max_uncompressed_bytes: int = 8 * 2**30
    max_ratio: float = 200.0  # compression ratio cap (zip bombs)
    max_image_pixels: int = 50_000_000  # per image, checked from the header before decoding
    workers: int | None = None  # decoding processes (this one + helpers); None: one per core

    def check(self) -> None:
        size = self.image_size
        if size is not None and not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE}, not {size}")
        if self.resize not in ("squash", "center_crop", "pad"):
            raise ValueError(f"resize must be squash, center_crop or pad, not {self.resize!r}")
        if not 0.0 < self.test_size < 1.0:
            raise ValueError(f"test_size must be between 0 and 1, not {self.test_size}")


@dataclass
class Ingested:
    classes: list[str]  # sorted; unicode kept
    images: torch.Tensor  # uint8, N×C×H×W, all kept images
    labels: torch.Tensor  # int64, N
    split: torch.Tensor  # uint8, N: 0 train, 1 val (only from an archive's val/ folder), 2 test
    files: list[str]  # archive member path of each kept image
    image_size: int
    channels: int  # 1 if every image is grayscale, else 3
    mean: list[float]  # per channel, over the train part, in 0..1 units
    std: list[float]
    report: dict[str, Any]  # JSON-ready: see cnnlab.datasets.report.build

    def part(self, which: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels of one split: 0 train, 1 val, 2 test."""
        mask = self.split == which
        return self.images[mask], self.labels[mask]


def _workers(options: IngestOptions) -> int:
    if options.workers:
        return options.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _decode_stream(
    stream: Iterator[tuple[Entry, bytes]],
    index: dict[str, int],
    declared: int,
    options: IngestOptions,
    lanes: list[Decoder],
    advance: Callable[[int], None],
) -> tuple[list[tuple[int, Any]], int | None]:
    """(item index, decoded or skipped) for each file the stream yields, and the size decoded
    to (see :func:`_decode_all`)."""
    size = options.image_size
    files = ((index[e.path], e.path, data) for e, data in stream)
    if size is None and declared <= IN_MEMORY_BYTES and len(index) <= IN_MEMORY_FILES:
        # Every header first (they give the size), then each picture decoded once, to it, by the
        # decoder that opened it: so each decoder opens an equal share.
        opened, taken = map_requests(
            lanes,
            ((OPEN, chunk, options.max_image_pixels) for chunk in chunks(files)),
            route=itertools.cycle(range(len(lanes))),
        )
        size = _default_size([side for _, side in opened if isinstance(side, int)])
        # Each OPEN answered one row per file, in order: chunking the rows again gives each
        # request's files, for the decoder that opened them.
        kept = [[i for i, side in chunk if isinstance(side, int)] for chunk in chunks(opened)]
        skipped = [(i, side) for i, side in opened if not isinstance(side, int)]
        advance(len(skipped))
        finished, _ = map_requests(
            lanes, ((FINISH, chunk, size, options.resize) for chunk in kept), advance, taken
        )
        return skipped + finished, size
    requests = (
        (DECODE, chunk, size, options.resize, options.max_image_pixels, DEFAULT_SIZE_CAP)
        for chunk in chunks(files)
    )
    return map_requests(lanes, requests, advance)[0], size


def _decode_all(
    archive: Archive,
    items: list[layouts.Item],
    options: IngestOptions,
    progress: Callable[[int, int], None] | None,
    lanes: list[Decoder],
) -> tuple[list[decode.Decoded | decode.Skipped], int | None]:
    """Each item decoded (or why not), in the items' order, and the size they were decoded to:
    ``options.image_size``, or the default size when the files fit in memory and could be read
    first (their headers give it); None when they were only reduced (:func:`_finish` ends)."""
    index = {item.path: i for i, item in enumerate(items)}
    declared = sum(e.size for e in archive.entries if e.path in index)
    total, done = len(items), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    with closing(archive.read(set(index))) as stream:
        decoded, size = _decode_stream(stream, index, declared, options, lanes, advance)
    results: list[decode.Decoded | decode.Skipped | None] = [None] * len(items)
    for i, result in decoded:
        results[i] = result
    missing = [items[i].path for i, r in enumerate(results) if r is None]
    if missing:  # listed, then not found on reading: the archive changed or lies
        raise InvalidDataset(f"archive entry {missing[0]!r} could not be read back")
    return [r for r in results if r is not None], size


def _default_size(shorter_sides: list[int]) -> int:
    median = statistics.median_low(shorter_sides) if shorter_sides else DEFAULT_SIZE_CAP
    return int(min(max(median, MIN_IMAGE_SIZE), DEFAULT_SIZE_CAP))


def _finish(
    decoded: list[decode.Decoded], size: int, options: IngestOptions, lanes: list[Decoder]
) -> list[np.ndarray]:
    """The reduced images (decoded before the size was known) at ``size``."""
    requests = (
        (FIT, chunk, size, options.resize) for chunk in chunks(enumerate(d.pixels for d in decoded))
    )
    return [pixels for _, pixels in map_requests(lanes, requests)[0]]


def _stack(pixels: list[np.ndarray], channels: int, size: int) -> np.ndarray:
    out = np.empty((len(pixels), channels, size, size), dtype=np.uint8)
    for i, p in enumerate(pixels):
        if channels == 1:
            out[i, 0] = p if p.ndim == 2 else p[..., 1]  # grey within a step: green
        else:
            out[i] = p.transpose(2, 0, 1) if p.ndim == 3 else p[None]
    return out


def _mean_std(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per channel, in 0..1 units, from each channel's histogram of byte values: exact, and one
    pass over the pixels."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        n = max(float(hist.sum()), 1.0)
        m = float((hist * levels).sum()) / n
        var = float((hist * levels**2).sum()) / n - m * m
        mean.append(round(m, 6))
        std.append(round(max(var, 0.0) ** 0.5, 6))
    return mean, std


def _check_classes(classes: list[str], labels: list[int], split: list[int]) -> None:
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise InvalidDataset(f"a dataset needs at least 2 classes, found {found}", classes=classes)
    train = np.bincount(
        [y for y, s in zip(labels, split, strict=True) if s == TRAIN], minlength=len(classes)
    )
    small = {
        classes[c]: int(train[c]) for c in range(len(classes)) if train[c] < MIN_IMAGES_PER_CLASS
    }
    if small:
        named = ", ".join(f"{name!r} ({n})" for name, n in small.items())
        raise InvalidDataset(
            f"each class needs at least {MIN_IMAGES_PER_CLASS} training images; too few in {named}",
            classes=list(small),
        )


def ingest(
    archive: Path, options: IngestOptions, progress: Callable[[int, int], None] | None = None
) -> Ingested:
    """The archive's images decoded, split and reported on; :class:`InvalidDataset` when it is
    hostile, damaged, of no known layout, or has too few classes or images. ``progress(done,
    total)`` is called from this thread as images are decoded."""
    options.check()
    limits = Limits(options.max_files, options.max_uncompressed_bytes, options.max_ratio)
    source = Archive(Path(archive), limits)
    paths = [e.path for e in source.entries]
    csv_path = layouts.csv_path(paths)
    content = None
    if csv_path:
        with closing(source.read({csv_path})) as found:
            content = next(found)[1]
    plan = layouts.plan(paths, content)
    skipped = list(plan.skipped)
    items: list[layouts.Item] = []
    for item in plan.items:
        if decode.is_nested_archive(item.path):
            skipped.append({"file": item.path, "why": "nested archive"})
        else:
            items.append(item)
    if not items:
        raise InvalidDataset(f"no images found in the archive (layout: {plan.kind})")

    with decoders(_workers(options), len(items)) as lanes:
        results, size = _decode_all(source, items, options, progress, lanes)
        kept = [
            (item, r)
            for item, r in zip(items, results, strict=True)
            if isinstance(r, decode.Decoded)
        ]
        decoded = [r for _, r in kept]
        skipped += [
            {"file": item.path, "why": r.why}
            for item, r in zip(items, results, strict=True)
            if isinstance(r, decode.Skipped)
        ]
        if not decoded:
            why = Counter(s["why"] for s in skipped)
            reasons = ", ".join(f"{n} {reason}" for reason, n in why.most_common())
            raise InvalidDataset(
                "no file in the archive could be decoded as an image"
                + (f" ({reasons})" if reasons else "")
            )
        if size is None:  # too many bytes to read twice: reduced, now brought to size
            size = _default_size([d.shorter_side for d in decoded])
            pixels = _finish(decoded, size, options, lanes)
        else:
            pixels = [d.pixels for d in decoded]
    channels = 1 if all(d.grey for d in decoded) else 3
    images = _stack(pixels, channels, size)
    del pixels, decoded, results

    classes = sorted({item.label for item, _ in kept})
    class_index = {name: i for i, name in enumerate(classes)}
    labels = [class_index[item.label] for item, _ in kept]
    split = [item.split for item, _ in kept]
    files = [item.path for item, _ in kept]
    _check_classes(classes, labels, split)
    if not plan.has_test:
        pool = [i for i, s in enumerate(split) if s == TRAIN]
        _, held = stratified_split([labels[i] for i in pool], options.test_size, options.seed)
        for j in held:
            split[pool[j]] = TEST

    hashes = [report.pixel_hash(image) for image in images]
    duplicates = [[files[i] for i in g] for g in report.duplicate_groups(hashes)]
    leaked = report.leaked_into_test(hashes, split)
    train_test = [{"train": files[j], "test": files[i]} for i, j in sorted(leaked.items())]
    if leaked:
        keep = [i for i in range(len(files)) if i not in leaked]
        images = images[keep]
        labels = [labels[i] for i in keep]
        split = [split[i] for i in keep]
        files = [files[i] for i in keep]
    tensor = torch.from_numpy(images)
    mean, std = _mean_std(tensor[torch.tensor(split) == TRAIN])
    summary = report.build(
        layout=plan.kind,
        classes=classes,
        labels=labels,
        split=split,
        files=files,
        skipped=skipped,
        duplicates=duplicates,
        train_test_duplicates=train_test,
    )
    return Ingested(
        classes=classes,
        images=tensor,
        labels=torch.tensor(labels, dtype=torch.int64),
        split=torch.tensor(split, dtype=torch.uint8),
        files=files,
        image_size=size,
        channels=channels,
        mean=mean,
        std=std,
        report=summary,
    )


def save_ingested(ingested: Ingested, path: Path) -> None:
    """Write ``ingested`` to ``path`` as one file, atomically: a reader sees the old file or the
    whole new one, never part of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CACHE_FORMAT,
        "classes": ingested.classes,
        "images": ingested.images.contiguous(),
        "labels": ingested.labels,
        "split": ingested.split,
        "files": ingested.files,
        "image_size": ingested.image_size,
        "channels": ingested.channels,
        "mean": ingested.mean,
        "std": ingested.std,
        "report": ingested.report,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_ingested(path: Path) -> Ingested:
    """What :func:`save_ingested` wrote (loaded with ``weights_only``: tensors and plain values
    only, never code). ValueError when the file is not such a cache."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise ValueError(f"{path} is not a decoded dataset cache (format {CACHE_FORMAT})")
    return Ingested(
        classes=list(data["classes"]),
        images=data["images"],
        labels=data["labels"],
        split=data["split"],
        files=list(data["files"]),
        image_size=int(data["image_size"]),
        channels=int(data["channels"]),
        mean=list(data["mean"]),
        std=list(data["std"]),
        report=dict(data["report"]),
    )
