"""What a spec costs, estimated before it runs, and the limits it must stay within.

The model is built on the meta device (no memory, no compute) and one forward pass of a single
image is traced with forward hooks on every leaf layer:

- ``params``: the model's parameters;
- ``flops_per_image``: forward FLOPs of one image, counting each multiply-add of a convolution
  or linear layer as 2 (``2 × output values × inputs per output``; activations, pooling and
  normalisation are not counted: they are a few percent of a conv net's work);
- ``activation_bytes``: peak memory of one training step at the spec's batch size::

      activation_bytes = 4 B × batch_size × (input values + Σ output values of every leaf layer)
                         × 2

  float32 values; every layer's output is counted as kept for the backward pass (an in-place
  ReLU's too, which is conservative), and the backward pass may hold a gradient of the same size
  for each (the × 2). Weights, their gradients and optimiser state are not included (see
  ``params``);
- ``job_tflops``: ``flops_per_image × 3 (forward and backward) × training images × epochs``,
  in TFLOPs (10¹²); validation and the test pass are left out.

:func:`check_budget` refuses a spec past the settings' limits with :class:`BudgetExceeded`
naming the field to change; :func:`spec_budget` gives the figures (the search plan shows them);
:func:`time_limit_seconds` turns them into the training task's time limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cnnlab.datasets.catalog import get_meta
from cnnlab.datasets.sizes import split_sizes
from cnnlab.errors import BudgetExceeded, DatasetUnavailable, SpecError
from cnnlab.settings import Settings
from cnnlab.spec.model import build_model, model_config
from cnnlab.spec.train import TrainSpec, train_count, val_count

BYTES_PER_VALUE = 4  # float32
# Time allowed per attempt whatever its size (start-up, loading and caching the data, the test
# pass) and per optimiser step (a small model's steps cost far more than their FLOPs).
TIME_LIMIT_BASE_SECONDS = 600.0
TIME_LIMIT_SECONDS_PER_STEP = 0.05


@dataclass(frozen=True)
class Budget:
    """A spec's estimated cost (see the module's docstring for how each figure is computed)."""

    params: int
    flops_per_image: int
    activation_bytes: int
    batch_size: int
    train_images: int
    val_images: int
    epochs: int
    # The option that sizes the model: ``model.channels``, or ``model.width`` for a resnet.
    size_field: str = "model.channels"

    @property
    def job_tflops(self) -> float:
        return self.flops_per_image * 3 * self.train_images * self.epochs / 1e12

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole job."""
        return math.ceil(self.train_images / self.batch_size) * self.epochs

    def to_dict(self) -> dict[str, Any]:
        figures = {k: v for k, v in asdict(self).items() if k != "size_field"}
        return {**figures, "job_tflops": round(self.job_tflops, 3)}


@dataclass(frozen=True)
class _Trace:
    params: int
    flops_per_image: int
    values_per_image: int  # input values + every leaf layer's output values, for one image


def trace_model(spec: TrainSpec) -> _Trace:
    """Build the spec's model on the meta device and trace one image through it. A model that
    cannot take the dataset's images is a :class:`SpecError` on ``model``."""
    import torch
    from torch import nn

    meta = get_meta(spec.dataset)
    flops = 0
    values = math.prod(meta.shape)

    def count(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal flops, values
        if not isinstance(output, torch.Tensor):
            return
        out = output.numel()  # one image: the batch dimension is 1
        values += out
        if isinstance(module, nn.Conv2d):
            c_in = module.in_channels // module.groups
            flops += 2 * out * c_in * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            flops += 2 * out * module.in_features

    try:
        with torch.device("meta"):
            model = build_model(model_config(spec, meta)).eval()
            leaves = [m for m in model.modules() if not any(True for _ in m.children())]
            hooks = [m.register_forward_hook(count) for m in leaves]
            try:
                model(torch.empty(1, *meta.shape))
            finally:
                for hook in hooks:
                    hook.remove()
    except (ValueError, RuntimeError) as exc:
        raise SpecError("model", str(exc)) from None
    params = sum(p.numel() for p in model.parameters())
    return _Trace(params, flops, values)


def estimate_budget(spec: TrainSpec, train_split: int) -> Budget:
    """The figures for ``spec`` on a dataset whose train split has ``train_split`` images."""
    trace = trace_model(spec)
    return Budget(
        params=trace.params,
        flops_per_image=trace.flops_per_image,
        activation_bytes=BYTES_PER_VALUE * spec.batch_size * trace.values_per_image * 2,
        batch_size=spec.batch_size,
        train_images=train_count(spec, train_split),
        val_images=val_count(spec, train_split),
        epochs=spec.epochs,
        size_field="model.width" if spec.model.arch == "resnet" else "model.channels",
    )


def train_split_size(dataset: str, settings: Settings) -> int:
    """The images of ``dataset``'s train split on this server; with downloads allowed, missing
    data is not an error: the published size stands in. :class:`DatasetUnavailable` else."""
    try:
        return split_sizes(dataset, settings).train
    except DatasetUnavailable:
        if not settings.download:
            raise
        return get_meta(dataset).standard_sizes[0]


def spec_budget(spec: TrainSpec, settings: Settings) -> Budget:
    """The figures for ``spec`` on this server's data (:func:`train_split_size`). Raises what
    ``validate_spec`` would for a dataset that is missing, or a model that cannot take its
    images."""
    return estimate_budget(spec, train_split_size(spec.dataset, settings))


def limits(settings: Settings) -> dict[str, float]:
    """The limits the figures are held to, by figure name."""
    return {
        "params": settings.max_model_params,
        "activation_bytes": settings.max_activation_bytes,
        "job_tflops": settings.max_job_tflops,
    }


def check_budget(budget: Budget, settings: Settings) -> None:
    """Raise :class:`BudgetExceeded` for the first figure past its limit: the parameters
    (field ``model.channels``, or ``model.width``), the activation memory (``batch_size``), the
    job's TFLOPs (``epochs``)."""
    if budget.params > settings.max_model_params:
        raise BudgetExceeded(
            budget.size_field,
            "params",
            budget.params,
            settings.max_model_params,
            "CNNLAB_MAX_MODEL_PARAMS",
            f"the model has {budget.params:,} parameters, over this server's limit of "
            f"{settings.max_model_params:,}; use fewer or narrower channels",
        )
    if budget.activation_bytes > settings.max_activation_bytes:
        fits = max(1, budget.batch_size * settings.max_activation_bytes // budget.activation_bytes)
        raise BudgetExceeded(
            "batch_size",
            "activation_bytes",
            budget.activation_bytes,
            settings.max_activation_bytes,
            "CNNLAB_MAX_ACTIVATION_BYTES",
            f"a training step at batch_size {budget.batch_size} needs about "
            f"{_gib(budget.activation_bytes)} of activations, over this server's limit of "
            f"{_gib(settings.max_activation_bytes)}; use a batch_size of at most {fits}",
        )
    if budget.job_tflops > settings.max_job_tflops:
        per_epoch = budget.job_tflops / budget.epochs
        epochs = math.floor(settings.max_job_tflops / per_epoch)
        hint = (
            f"use at most {epochs} epochs" if epochs >= 1 else "use a smaller model or train_size"
        )
        raise BudgetExceeded(
            "epochs",
            "job_tflops",
            round(budget.job_tflops, 3),
            settings.max_job_tflops,
            "CNNLAB_MAX_JOB_TFLOPS",
            f"{budget.epochs} epochs of {budget.train_images:,} images at "
            f"{budget.flops_per_image / 1e9:.3g} GFLOPs per image (forward; ×3 with backward) "
            f"are {budget.job_tflops:,.1f} TFLOPs, over this server's limit of "
            f"{settings.max_job_tflops:,g}; {hint}",
        )


def checked_time_limit(spec: TrainSpec, settings: Settings) -> float | None:
    """The worker's check just before it trains: :class:`BudgetExceeded` (or the error
    :func:`spec_budget` raises) when ``spec`` is past this server's limits now, whatever path
    queued it; else its :func:`time_limit_seconds`, which is then bounded by the limits."""
    budget = spec_budget(spec, settings)
    check_budget(budget, settings)
    return time_limit_seconds(budget, settings)


def time_limit_seconds(budget: Budget, settings: Settings) -> float | None:
    """How long one attempt at the job may train (None: no limit, when
    ``min_throughput_gflops`` is 0)::

        600 s + 0.05 s × optimiser steps
              + (job FLOPs + validation FLOPs) / (min_throughput_gflops × 10⁹)

    where validation FLOPs are ``flops_per_image × val_images × epochs``."""
    if settings.min_throughput_gflops <= 0:
        return None
    flops = budget.job_tflops * 1e12 + budget.flops_per_image * budget.val_images * budget.epochs
    return (
        TIME_LIMIT_BASE_SECONDS
        + TIME_LIMIT_SECONDS_PER_STEP * budget.steps
        + flops / (settings.min_throughput_gflops * 1e9)
    )


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
