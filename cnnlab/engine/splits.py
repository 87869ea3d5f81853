"""A spec's deterministic train/validation/test split of a decoded dataset."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.datasets.catalog import get_meta
from cnnlab.datasets.loading import ImageSet, load_split
from cnnlab.datasets.splits import stratified_split
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


def stratified_indices(spec: TrainSpec, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`split_indices`, with the validation hold-out drawn per class in the classes'
    proportions (an upload's classes may be few and uneven)."""
    n = len(labels)
    kept, held_out = stratified_split(labels.cpu().numpy(), val_count(spec, n), spec.seed)
    # ``kept`` is sorted (the archive's class order): shuffled, a smaller ``train_size`` still
    # draws from every class.
    order = torch.randperm(len(kept), generator=torch.Generator().manual_seed(spec.seed))
    kept_t = torch.as_tensor(kept, dtype=torch.int64)[order]
    return kept_t[: train_count(spec, n)], torch.as_tensor(held_out, dtype=torch.int64)


def train_val_indices(spec: TrainSpec, full: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    """The spec's training and validation indices into ``full`` (its dataset's train split):
    stratified for an upload, as built-in datasets always were split otherwise."""
    if get_meta(spec.dataset).decoded is not None:
        return stratified_indices(spec, full.labels)
    return split_indices(spec, len(full))


def make_splits(spec: TrainSpec, settings: Settings | None = None) -> Splits:
    settings = settings or get_settings()
    full = load_split(spec.dataset, train=True, settings=settings)
    test = load_split(spec.dataset, train=False, settings=settings)
    check_against_dataset(spec, len(full))
    train_idx, val_idx = train_val_indices(spec, full)
    return Splits(train=full.subset(train_idx), val=full.subset(val_idx), test=test)
