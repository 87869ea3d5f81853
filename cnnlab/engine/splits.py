"""A spec's deterministic train/validation/test split of a decoded dataset."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.settings import Settings, get_settings
from cnnlab.spec.train import TrainSpec, check_against_dataset, train_count, val_count


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet


def split_indices(spec: TrainSpec, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation indices into a train split of ``n`` images: the validation
    hold-out first, then the training portion, the same for the same spec."""
    n_val = val_count(spec, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(spec.seed))
    return perm[n_val : n_val + train_count(spec, n)], perm[:n_val]


def make_splits(spec: TrainSpec, settings: Settings | None = None) -> Splits:
    settings = settings or get_settings()
    full = load_split(spec.dataset, train=True, settings=settings)
    test = load_split(spec.dataset, train=False, settings=settings)
    check_against_dataset(spec, len(full))
    train_idx, val_idx = split_indices(spec, len(full))
    return Splits(train=full.subset(train_idx), val=full.subset(val_idx), test=test)
