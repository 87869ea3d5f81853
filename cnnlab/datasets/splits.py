"""Stratified hold-outs: each class gives up the same share of its images, chosen by a seed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _held_per_class(counts: np.ndarray, total: int) -> np.ndarray:
    """How many of each class to hold out so that they sum to ``total`` and follow the classes'
    proportions (largest remainders get the rounding), never taking a class's last image while
    another class can give one instead."""
    n = int(counts.sum())
    exact = counts * (total / n) if n else counts.astype(float)
    held = np.minimum(np.floor(exact).astype(np.int64), np.maximum(counts - 1, 0))
    # Hand out what rounding down left, to the classes furthest below their exact share first
    # (ties: the larger class, then the lower label), keeping one image in each class if possible.
    for keep_one in (True, False):
        room = counts - held - (1 if keep_one else 0)
        while held.sum() < total and (room > 0).any():
            gap = np.where(room > 0, exact - held, -np.inf)
            order = np.lexsort((np.arange(len(counts)), -counts, -gap))
            c = order[0]
            held[c] += 1
            room[c] -= 1
    return held


def stratified_split(
    labels: Sequence[int] | np.ndarray, fraction_or_count: float | int, seed: int
) -> tuple[list[int], list[int]]:
    """(kept, held_out) indices into ``labels``, each sorted. ``fraction_or_count``: a float in
    [0, 1) holds out that share of the images, an int that many. Each class holds out its share
    of the total (rounded so the total is exact), the images picked by ``seed`` alone: the same
    labels and seed give the same split."""
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if isinstance(fraction_or_count, bool):
        raise TypeError("fraction_or_count must be a float or an int, not a bool")
    if isinstance(fraction_or_count, (int, np.integer)):
        total = int(fraction_or_count)
        if not 0 <= total <= n:
            raise ValueError(f"cannot hold out {total} of {n} images")
    else:
        frac = float(fraction_or_count)
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"the fraction to hold out must be in [0, 1), not {frac}")
        total = min(n, math.floor(n * frac + 0.5))
    classes, inverse = np.unique(y, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    held = _held_per_class(counts, total)
    rng = np.random.default_rng(seed)
    held_out: list[np.ndarray] = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        held_out.append(members[rng.permutation(len(members))[: held[c]]])
    out = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[out] = False
    return np.flatnonzero(mask).tolist(), out.tolist()
