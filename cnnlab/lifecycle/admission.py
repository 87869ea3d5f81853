"""The one check every spec that will train passes, wherever it comes from: a job at submit, a
search's planned trials at create, a trial drawn later (:func:`advance_search`), a trial run again
by a retry. The spec is checked against this server's data, its model and its budget
(:func:`~cnnlab.spec.validate.validate_spec`), and a ``cuda`` spec needs a live GPU worker.

The worker checks the budget once more before it trains (``worker.tasks``), so nothing depends on
the path a spec took to the queue, and a time limit never grows with an estimate past the limits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cnnlab.lifecycle.gpu import check_gpu_worker
from cnnlab.search.grid import GridPoint, check_point
from cnnlab.settings import Settings
from cnnlab.spec.train import TrainSpec
from cnnlab.spec.validate import validate_spec


def admit(session: Session, spec: TrainSpec, settings: Settings) -> None:
    """A job's spec: :class:`SpecError`, :class:`BudgetExceeded`, :class:`DatasetUnavailable` or
    :class:`NoGpuWorker` when it may not train here."""
    validate_spec(spec, settings)
    check_gpu_worker(session, spec.device, settings)


def admit_trial(session: Session, point: GridPoint, settings: Settings, prefix: str) -> None:
    """A search trial's point: as :func:`admit`, the error naming ``<prefix>.<path>`` when a
    param of the point is at fault and ``base.<field>`` otherwise."""
    check_point(point, settings, prefix)
    check_gpu_worker(session, point.spec.device, settings)
