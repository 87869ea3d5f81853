"""Submit-time checks of a spec against the data this server actually has."""

from __future__ import annotations

from cnnlab.datasets.catalog import get_meta
from cnnlab.errors import SpecError
from cnnlab.settings import Settings
from cnnlab.spec.budget import check_budget, estimate_budget, train_split_size
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec, check_against_dataset


def check_model(spec: TrainSpec) -> None:
    """Build the spec's model on the meta device (no memory, no compute) and run a forward pass,
    so an architecture that cannot fit the dataset's images is a spec error, not a failed job."""
    import torch

    meta = get_meta(spec.dataset)
    try:
        with torch.device("meta"):
            build_model(model_config(spec, meta))(torch.empty(2, *meta.shape))
    except (ValueError, RuntimeError) as exc:
        raise SpecError("model", str(exc)) from None


def validate_spec(spec: TrainSpec, settings: Settings) -> None:
    """Raise :class:`DatasetUnavailable`, :class:`SpecError` or :class:`BudgetExceeded` (the
    spec's estimated cost is past this server's limits: :mod:`cnnlab.spec.budget`) before any work
    is queued.

    With downloads allowed, missing data is not an error: the published split sizes stand in.
    """
    train_split = train_split_size(spec.dataset, settings)
    check_against_dataset(spec, train_split)
    check_model(spec)
    check_budget(estimate_budget(spec, train_split), settings)
