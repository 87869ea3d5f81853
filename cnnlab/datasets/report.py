"""What an ingest found, as JSON-ready figures: images per class and split, skipped files,
exact duplicates (same pixels), duplicates across train and test, class imbalance."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import numpy as np

from cnnlab.datasets.layouts import TEST, TRAIN, VAL

SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


def pixel_hash(pixels: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).digest()


def duplicate_groups(hashes: list[bytes]) -> list[list[int]]:
    """Indices of images with the same pixels, in groups of two or more, in first-seen order."""
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        groups[h].append(i)
    return [g for g in groups.values() if len(g) > 1]


def leaked_into_test(hashes: list[bytes], split: list[int]) -> dict[int, int]:
    """Test images whose pixels are also in train or val: {test index: that other image}."""
    seen: dict[bytes, int] = {}
    for i, h in enumerate(hashes):
        if split[i] != TEST:
            seen.setdefault(h, i)
    return {i: seen[h] for i, h in enumerate(hashes) if split[i] == TEST and h in seen}


def counts(classes: list[str], labels: list[int], split: list[int]) -> dict[str, dict[str, int]]:
    table = {name: {"train": 0, "val": 0, "test": 0} for name in classes}
    for label, s in zip(labels, split, strict=True):
        table[classes[label]][SPLIT_NAMES[s]] += 1
    return table


def imbalance_ratio(table: dict[str, dict[str, int]]) -> float:
    train = [c["train"] for c in table.values()]
    return max(train) / min(train) if train and min(train) > 0 else float("inf")


def build(
    *,
    layout: str,
    classes: list[str],
    labels: list[int],
    split: list[int],
    files: list[str],
    skipped: list[dict[str, str]],
    duplicates: list[list[str]],
    train_test_duplicates: list[dict[str, str]],
) -> dict[str, Any]:
    table = counts(classes, labels, split)
    return {
        "layout": layout,
        "images": len(files),
        "counts": table,
        "skipped": skipped,
        "duplicates": duplicates,
        "train_test_duplicates": train_test_duplicates,
        "imbalance_ratio": round(imbalance_ratio(table), 4),
    }
