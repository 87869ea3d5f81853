"""The one way evaluations, comparisons and batch predictions read labelled data.

``ref`` names a set of labelled images: a built-in dataset or a user's uploaded version
(``NAME@V``, pinned at submit and put in scope by whoever reads it:
:func:`cnnlab.datasets.catalog.uploads_in_scope`), meaning its test split. Every reader of
evaluation data goes through :func:`load_labelled`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnlab.datasets.catalog import DATASETS, cache_key, get_meta, locate
from cnnlab.engine.splits import train_val_indices
from cnnlab.errors import CnnlabError, SpecError
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec

if TYPE_CHECKING:  # read by workers; the API checks names and classes without torch
    import torch


class UnknownEvaluationSet(CnnlabError):
    code = "invalid_request"
    status_code = 422


@dataclass(frozen=True)
class LabelledSet:
    """uint8 N×C×H×W ``images`` and int64 ``labels`` into ``class_names``."""

    ref: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)


def check_ref(ref: str) -> str:
    """``ref`` if it names a set this server knows (a built-in, or an upload in scope; 422
    otherwise), before any pixel is read."""
    try:
        get_meta(ref)
    except SpecError:
        raise UnknownEvaluationSet(
            f"dataset: {ref!r} is not a dataset; one of {sorted(DATASETS)} or your uploads "
            "(NAME or NAME@V), meaning its test split",
            field="dataset",
            choices=sorted(DATASETS),
        ) from None
    return ref


def class_names(ref: str) -> list[str]:
    """The set's class names, in label order, without reading its pixels."""
    return list(get_meta(check_ref(ref)).class_names)


def load_labelled(ref: str, settings: Settings) -> LabelledSet:
    """The labelled images ``ref`` names: a built-in's or an upload's test split."""
    from cnnlab.datasets.loading import load_split

    split = load_split(check_ref(ref), train=False, settings=settings)
    return LabelledSet(ref, split.images, split.labels, class_names(ref))


def validation_set(spec: TrainSpec, settings: Settings) -> LabelledSet:
    """A train spec's validation hold-out, as the job trained against it."""
    from cnnlab.datasets.loading import load_split

    full = load_split(spec.dataset, train=True, settings=settings)
    _, val_idx = train_val_indices(spec, full)
    val = full.subset(val_idx)
    return LabelledSet(
        f"{spec.dataset}:validation", val.images, val.labels, class_names(spec.dataset)
    )


_checksums: dict[str, str] = {}
_checksums_lock = threading.Lock()


def checksum(ref: str, settings: Settings) -> str | None:
    """sha256 of the set's files as found on this machine (None when they are not here);
    computed once per process and set of files."""
    try:
        files = locate(check_ref(ref), settings)
    except CnnlabError:
        return None
    key = cache_key(files)
    with _checksums_lock:
        if key in _checksums:
            return _checksums[key]
    digest = hashlib.sha256()
    for path in files.paths(True) + files.paths(False):
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    value = digest.hexdigest()
    with _checksums_lock:
        _checksums[key] = value
    return value
