"""An uploaded version's train split: validation drawn stratified, a smaller train_size from
every class, the same for the same seed; its meta in scope only where it was put."""

from __future__ import annotations

import pytest
import torch

from cnnlab.datasets.catalog import get_meta, upload_meta, uploads_in_scope
from cnnlab.datasets.loading import ImageSet
from cnnlab.engine.splits import train_val_indices
from cnnlab.errors import SpecError
from cnnlab.spec.train import TrainSpec

META = upload_meta(
    "parts@1",
    decoded="0" * 64,
    channels=1,
    image_size=16,
    classes=["a", "b", "c"],
    mean=[0.5],
    std=[0.25],
    train=100,
    test=20,
    resize="pad",
)


def _full() -> ImageSet:
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    return ImageSet(torch.zeros(100, 1, 16, 16, dtype=torch.uint8), labels)


def test_validation_keeps_the_class_proportions() -> None:
    full = _full()
    spec = TrainSpec(dataset="parts@1", val_size=0.2, train_size=10, seed=3)
    with uploads_in_scope({"parts@1": META}):
        train, val = train_val_indices(spec, full)
        again = train_val_indices(spec, full)
    assert torch.bincount(full.labels[val], minlength=3).tolist() == [12, 6, 2]
    assert len(train) == 10 and len(set(full.labels[train].tolist())) > 1
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])


def test_an_upload_is_known_only_in_scope() -> None:
    with uploads_in_scope({"parts@1": META}):
        assert get_meta("parts@1").shape == (1, 16, 16)
    with pytest.raises(SpecError) as info:
        get_meta("parts@1")
    assert info.value.field == "dataset"
