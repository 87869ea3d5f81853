"""Warm starts at submit and at run time: the weights a spec's ``init`` names, always the
caller's own (someone else's model or job is not found, exactly like a missing one)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.datasets.catalog import get_meta
from cnnlab.engine import checkpoints
from cnnlab.engine.warm_start import check_compatible
from cnnlab.errors import CnnlabError
from cnnlab.spec.recipe import InitSpec
from cnnlab.spec.train import TrainSpec
from cnnlab.store import jobs as job_store
from cnnlab.store import model_versions
from cnnlab.store.errors import NotFound
from cnnlab.store.tables import Job


class InitNotFound(NotFound):
    """``init`` names a model, version or job the caller does not have: 404 naming ``init``."""

    def __init__(self, message: str) -> None:
        CnnlabError.__init__(self, f"init: {message}", field="init")


def _source(session: Session, owner_id: int, init: InitSpec) -> tuple[InitSpec, bytes]:
    """``init`` pinned to what it names now (a model's alias → its version), and its weights."""
    try:
        if init.job_id is not None:
            job_store.get_job(session, owner_id, init.job_id)
            return init, job_store.model_bytes(session, init.job_id)[1]
        assert init.model is not None
        found = model_versions.resolve(
            session, owner_id, init.model, alias=init.alias, version=init.version
        )
    except NotFound as exc:
        raise InitNotFound(exc.message) from None
    pinned = InitSpec(model=found.name, version=found.version)
    return pinned, model_versions.data_by_id(session, found.version_id)


def pin_init(session: Session, owner_id: int, spec: TrainSpec) -> TrainSpec:
    """``spec`` with its ``init`` pinned to a model version (an alias may move later; the job
    records what it started from), after checking the weights fit its model: 422 naming
    ``init`` if not, 404 naming ``init`` if the caller has no such model, version or job."""

    if spec.init is None:
        return spec
    pinned, blob = _source(session, owner_id, spec.init)
    config = checkpoints.model_config(spec, get_meta(spec.dataset))
    check_compatible(config, checkpoints.loads(blob), spec.init.describe())
    return spec.model_copy(update={"init": pinned})


def init_weights_of(session: Session, job_id: str, init: InitSpec) -> bytes:
    """The checkpoint bytes a job's ``init`` names, as its owner may read them."""
    owner_id = session.scalar(select(Job.owner_id).where(Job.id == job_id))
    if owner_id is None:
        raise NotFound("job", job_id)
    return _source(session, owner_id, init)[1]
