"""The real app over httpx (FastAPI's ApiClient), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.main import create_app
from cnnlab.settings import get_settings
from cnnlab.store.db import dispose_engine, session_scope
from cnnlab.store.tables import User
from cnnlab.store.users import create_token, get_or_create_user
from tests.utils.api_client import ApiClient
from tests.utils.databases import upgraded
from tests.utils.datasets import write_mnist
from tests.utils.factories import unique_name
from tests.utils.image_archives import make_zip, write_class_folders


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, cnnlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The settings' database, migrated: SQLite under the test's home, or the module's PG."""
    if request.param == "postgres":
        monkeypatch.setenv("CNNLAB_DATABASE_URL", request.getfixturevalue("pg_url"))
        get_settings.cache_clear()
    url = get_settings().resolved_database_url
    if request.param == "sqlite":
        upgraded(url)
    yield url
    dispose_engine(close=True)


@pytest.fixture
def mnist(data_dir: Path) -> Path:
    return write_mnist(data_dir, n_train=300, n_test=50)


@pytest.fixture
def client(db_url: str) -> Iterator[ApiClient]:
    with ApiClient(create_app()) as c:
        yield c


@dataclass
class Caller:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_caller(db_url: str) -> Caller:
    name = unique_name()
    with session_scope(db_url) as s:
        token = create_token(s, name)
        user = get_or_create_user(s, name)
    return Caller(user, token)


@pytest.fixture
def alice(db_url: str) -> Caller:
    return make_caller(db_url)


@pytest.fixture
def bob(db_url: str) -> Caller:
    return make_caller(db_url)


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint from real training on tiny generated MNIST, as the worker would store it."""

    checkpoint: bytes
    spec: dict[str, object]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from cnnlab.engine.checkpoints import dumps
    from cnnlab.engine.training import fit
    from cnnlab.settings import Settings
    from cnnlab.spec.train import TrainSpec

    root = tmp_path_factory.mktemp("trained")
    write_mnist(root / "data", n_train=300, n_test=50)
    spec = TrainSpec.model_validate(
        {"dataset": "mnist", "val_size": 50, "batch_size": 50, "epochs": 1, "device": "cpu"}
    )
    result = fit(spec, settings=Settings(home=root / "home", data_dir=root / "data"))
    return TrainedModel(dumps(result.best_checkpoint), spec.model_dump(mode="json"))


def give_model(db_url: str, job_id: str, trained: TrainedModel, epochs: int = 1) -> None:
    """Play the worker: claim the job and record ``epochs`` epochs with the trained model."""
    from cnnlab import lifecycle
    from tests.utils.factories import metrics

    with session_scope(db_url) as s:
        lifecycle.claim(s, job_id, "test-worker")
    for epoch in range(1, epochs + 1):
        with session_scope(db_url) as s:
            m = metrics(epoch, 0.5 + 0.1 * epoch, val_loss=1.0 / epoch)
            lifecycle.record_epoch(s, job_id, m, last=trained.checkpoint, best=trained.checkpoint)


# A job and a search for the routes that take an id; each search trial is one more job.
SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 1}
GRID = {"optimizer.lr": [0.01, 0.1]}


# A job the API accepts on the generated MNIST; ``job_id`` gives it the trained checkpoint.
MODEL_JOB_SPEC = {"dataset": "mnist", "val_size": 50, "batch_size": 32, "epochs": 3}


@pytest.fixture
def job_id(
    client: ApiClient, alice: Caller, mnist: Path, db_url: str, trained: TrainedModel
) -> str:
    """Alice's job, one epoch recorded with the trained checkpoint: it predicts at once."""
    r = client.post("/v1/jobs", json=MODEL_JOB_SPEC, headers=alice.headers)
    give_model(db_url, r.json()["id"], trained)
    return str(r.json()["id"])


@pytest.fixture
def owned(
    client: ApiClient,
    alice: Caller,
    mnist: Path,
    db_url: str,
    trained: TrainedModel,
    tmp_path: Path,
) -> dict[str, str]:
    """Alice's job (with a model), search and registered model, by resource: ``{"job": id,
    "search": id, "model": name, "version": "1", "alias": "production", "webhook": id}``, and
    her queued evaluation, comparison and batch prediction, and an uploaded dataset still
    ingesting (no worker runs here)."""
    job = client.post("/v1/jobs", json=SPEC, headers=alice.headers).json()
    give_model(db_url, job["id"], trained)
    search = client.post("/v1/searches", json={"base": SPEC, "grid": GRID}, headers=alice.headers)
    model = {"name": "owned-model", "job_id": job["id"]}
    assert client.post("/v1/models", json=model, headers=alice.headers).status_code == 201
    hook = {"url": "https://93.184.215.14/hook", "events": ["job.succeeded"]}
    webhook = client.post("/v1/webhooks", json=hook, headers=alice.headers)
    assert webhook.status_code == 201, webhook.text
    scoring = {}
    for kind, path, body in (
        ("evaluation", "evaluations", {"version": 1, "dataset": "mnist"}),
        ("comparison", "comparisons", {"a": 1, "b": 1, "dataset": "mnist"}),
        ("batch", "batch-predictions", {"dataset": "mnist"}),
    ):
        r = client.post(f"/v1/models/owned-model/{path}", json=body, headers=alice.headers)
        assert r.status_code == 202, r.text
        scoring[kind] = r.json()["id"]
    archive = make_zip(write_class_folders(tmp_path / "owned-dataset", per_class=5)).read_bytes()
    upload = client.post(
        "/v1/datasets",
        params={"name": "owned-dataset"},
        content=archive,
        headers={**alice.headers, "Content-Type": "application/zip"},
    )
    assert upload.status_code == 202, upload.text
    return {
        "job": job["id"],
        "search": search.json()["id"],
        "model": "owned-model",
        "version": "1",
        "alias": "production",
        "webhook": webhook.json()["id"],
        **scoring,
        "dataset": "owned-dataset",
    }
