"""Typed errors raised by the core. Each carries a stable ``code`` and the HTTP status it maps to,
so the API translates them in one handler and the worker records them as a job's typed failure."""

from __future__ import annotations

from typing import Any


class CnnlabError(Exception):
    code = "internal"
    status_code = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.code, "message": self.message, **self.details}


class SpecError(CnnlabError):
    """A spec (or grid) value is invalid; ``field`` is the dotted path to it."""

    code = "invalid_spec"
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class DatasetUnavailable(CnnlabError):
    code = "dataset_unavailable"
    status_code = 422

    def __init__(self, dataset: str, tried: list[str], hint: str = "") -> None:
        where = ", ".join(tried)
        msg = f"dataset {dataset!r} not found (looked in: {where})"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg, dataset=dataset, tried=tried)


class Diverged(CnnlabError):
    """Training produced a non-finite loss."""

    code = "diverged"
    status_code = 422

    def __init__(self, epoch: int, batch: int, lr: float) -> None:
        super().__init__(
            f"learning rate {lr:g} diverged at epoch {epoch}, batch {batch} "
            f"(loss is not finite): try a smaller lr, e.g. {lr / 10:g}",
            epoch=epoch,
            batch=batch,
            lr=lr,
        )


class OutOfMemory(CnnlabError):
    code = "out_of_memory"
    status_code = 422

    def __init__(self, batch_size: int, device: str) -> None:
        super().__init__(
            f"out of memory on {device} with batch_size {batch_size}: try a smaller batch_size",
            batch_size=batch_size,
            device=device,
        )


class BadInput(CnnlabError):
    """An image given for prediction cannot be used; ``item`` says which (0-based)."""

    code = "bad_input"
    status_code = 422

    def __init__(self, item: int | str, message: str) -> None:
        super().__init__(f"input {item}: {message}", item=item)
        self.item = item


class CheckpointError(CnnlabError):
    code = "bad_checkpoint"
    status_code = 422


class BudgetExceeded(CnnlabError):
    """A spec's estimated cost is past one of this server's limits (:mod:`cnnlab.spec.budget`):
    ``field`` is the spec field to change, ``figure`` which estimate it is, ``value`` and
    ``limit`` the two numbers, ``setting`` the environment variable that sets the limit."""

    code = "budget_exceeded"
    status_code = 422

    def __init__(
        self, field: str, figure: str, value: float, limit: float, setting: str, message: str
    ) -> None:
        super().__init__(
            f"{field}: {message}",
            field=field,
            figure=figure,
            value=value,
            limit=limit,
            setting=setting,
        )
        self.field = field


class NoGpuWorker(CnnlabError):
    """A ``device: cuda`` job on a deployment where no live worker serves the gpu queue."""

    code = "no_gpu_worker"
    status_code = 422

    def __init__(self, message: str) -> None:
        super().__init__(f"device: {message}", field="device")
        self.field = "device"


class TimeLimitExceeded(CnnlabError):
    """A training attempt ran longer than its spec's budget allows (:func:`cnnlab.spec.budget.
    time_limit_seconds`)."""

    code = "time_limit_exceeded"
    status_code = 422

    def __init__(self, seconds: float, limit: float, epoch: int) -> None:
        super().__init__(
            f"training ran {seconds:.0f}s, past its time limit of {limit:.0f}s (after epoch "
            f"{epoch}); the limit follows from the spec's estimated TFLOPs and "
            "CNNLAB_MIN_THROUGHPUT_GFLOPS",
            seconds=round(seconds, 1),
            limit=round(limit, 1),
            epoch=epoch,
        )


class InvalidDataset(CnnlabError):
    """An uploaded archive cannot become a dataset: hostile or damaged, an unknown layout, or too
    few images; the message names what is wrong (the entry and why, the classes too small, …)."""

    code = "invalid_dataset"
    status_code = 422
