"""A training job's receipt, signature and per-class report, as the worker's task records them,
and the receipt carried on into the registry and exports."""

from __future__ import annotations

from cnnlab.engine.checkpoints import loads
from cnnlab.engine.export import export_metadata
from cnnlab.store import model_versions as registry
from cnnlab.store.db import session_scope
from cnnlab.store.jobs import model_bytes
from cnnlab.store.tables import Job, JobStatus
from tests.utils.factories import submit
from tests.worker.conftest import TINY
from worker.tasks import run_job


def test_a_job_records_its_receipt_and_per_class_report(database: None) -> None:
    job_id = submit(TINY)
    assert run_job(job_id, "test/1") is JobStatus.succeeded
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        environment, signature, result = job.environment, job.signature, job.result
        owner = job.owner_id
        version = registry.register_version(session, owner, "receipts", job_id)
        _, data = model_bytes(session, job_id)
    assert environment is not None
    for key in ("cnnlab", "python", "torch", "torchvision", "device_name", "seed"):
        assert environment[key] is not None, key
    assert environment["dataset"]["name"] == "mnist"
    assert len(environment["dataset"]["checksum"]) == 64
    assert environment["deterministic"] is False
    assert signature is not None and signature["input"]["channels"] == 1
    assert result is not None
    validation, test = result["validation"], result["test"]
    assert validation["count"] == TINY["val_size"]
    assert validation["confusion"]["class_names"] == signature["class_names"]
    assert sum(c["support"] for c in test["per_class"].values()) == test["count"]
    assert all(m["png"] and m["true"] != m["predicted"] for m in validation["mistakes"])
    assert version.environment == environment and version.signature == signature
    ckpt = loads(data)
    assert ckpt["environment"]["torch"] == environment["torch"]
    assert export_metadata(ckpt)["environment"]["seed"] == environment["seed"]
