"""Stratified hold-outs keep each class's share, hold out exactly what was asked, and depend on
the seed alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cnnlab.datasets import ingest
from cnnlab.datasets.splits import stratified_split
from tests.utils.image_archives import fashion_mnist


def _real_labels(n: int) -> list[int]:
    """Fashion-MNIST's first ``n`` training labels, with classes 0–2 thinned so they are rarer."""
    labels = fashion_mnist()[1][: 3 * n].tolist()
    kept = [y for i, y in enumerate(labels) if y > 2 or i % 5 == 0]
    return kept[:n]


@pytest.mark.parametrize("amount", [0.15, 0.3, 0.5, 120, 7])
def test_each_class_holds_out_its_share(amount: float | int) -> None:
    labels = _real_labels(1000)
    kept, held = stratified_split(labels, amount, seed=3)
    assert sorted(kept + held) == list(range(len(labels)))  # a partition
    assert kept == sorted(kept) and held == sorted(held)
    total = round(len(labels) * amount) if isinstance(amount, float) else amount
    assert len(held) == total
    counts, held_counts = Counter(labels), Counter(labels[i] for i in held)
    for c, n in counts.items():
        # The class's exact share, give or take the rounding of one image.
        assert abs(held_counts[c] - n * total / len(labels)) < 1.0 + 1e-9


def test_the_same_seed_gives_the_same_split_and_another_seed_another() -> None:
    labels = _real_labels(500)
    assert stratified_split(labels, 0.2, seed=7) == stratified_split(labels, 0.2, seed=7)
    assert stratified_split(labels, 0.2, seed=7) != stratified_split(labels, 0.2, seed=8)
    # The labels may come as an array, a list or a tensor's list: the same split.
    assert stratified_split(np.asarray(labels), 0.2, seed=7) == stratified_split(labels, 0.2, 7)


def test_a_class_keeps_an_image_while_another_class_can_give_one() -> None:
    # Exact shares 0.6 and 2.4: rounding would take class 0's only image; class 1 gives one more.
    labels = [0] + [1] * 4
    kept, held = stratified_split(labels, 3, seed=0)
    assert Counter(labels[i] for i in held) == Counter({1: 3}) and kept[0] == 0
    # Otherwise the rounding goes to the class furthest below its exact share.
    labels = [0] * 2 + [1] * 40
    _, held = stratified_split(labels, 10, seed=0)  # shares 0.48 and 9.52
    assert Counter(labels[i] for i in held) == Counter({1: 10})
    _, held = stratified_split([0] * 6 + [1] * 14, 5, seed=0)  # shares 1.5 and 3.5: a tie
    assert len(held) == 5


def test_nothing_held_and_bad_amounts() -> None:
    labels = [0, 1, 0, 1]
    assert stratified_split(labels, 0.0, seed=0) == ([0, 1, 2, 3], [])
    assert stratified_split(labels, 0, seed=0) == ([0, 1, 2, 3], [])
    for bad in (1.0, -0.1, 5, -1):
        with pytest.raises(ValueError):
            stratified_split(labels, bad, seed=0)
    with pytest.raises(TypeError):
        stratified_split(labels, True, seed=0)


def test_ingest_re_exports_it() -> None:
    assert ingest.stratified_split is stratified_split
