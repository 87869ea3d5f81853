"""Every test gets its own CNNLAB_HOME and data directory; nothing touches ~/.cnnlab."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cnnlab.settings import get_settings
from cnnlab.store import migrate
from cnnlab.store.db import dispose_engine, get_sessionmaker
from cnnlab.threads import yield_idle_threads
from tests.utils.databases import empty_postgres, upgraded

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")

# Which tests are `slow` (`make test-fast` leaves them out; `make test` runs them): those that start
# real processes (the `cnnlab` command, Celery workers, a service's API and workers), a browser,
# or train on real data. Decided here, once, by where a test lives, what it requests, or its name:
SLOW_FOLDERS = (
    "tests/e2e/",  # stacks of `cnnlab serve|api|worker` processes
    "tests/faults/",  # worker processes, killed and restarted
    "tests/ui/",  # chromium, against a service
)
# The fixtures' names are the stacks' own: a fixture elsewhere that took one (an in-process
# client called `lab`) would make its tests slow, and group them with the stack's worker.
SLOW_FIXTURES = {
    "lab",  # tests/client's service: `cnnlab api` and `cnnlab worker` processes
    "ui_lab",  # the same for the dashboard
    "browser",  # chromium
    "embedded_stack",  # `cnnlab serve`
    "real_fashion_mnist",  # Debian's Fashion-MNIST, to train on
}
# Tests that start `cnnlab` or Celery worker processes in their own body (a path: all its tests).
SLOW_TESTS = (
    "tests/api/test_dataset_training.py",  # trains on real images
    "tests/core/test_cli_train.py",  # `cnnlab train`
    "tests/store/test_cli.py",  # `cnnlab token`
    "tests/store/test_migrations.py::test_cli_db_upgrade_uses_the_settings_url",
    "tests/worker/test_broker.py::test_each_message_runs_exactly_once_across_processes",
    "tests/worker/test_broker.py::test_each_queue_is_served_only_by_its_workers",
    "tests/worker/test_broker.py::test_warm_shutdown_finishes_the_running_task",
    "tests/worker/test_process.py::test_the_worker_command_explains_a_missing_gpu",
)
# What a rule above takes in but does none of that.
NOT_SLOW = (
    "tests/e2e/test_deployment.py",  # only `docker compose config` on the file
    "tests/core/test_catalog_and_data.py::test_debian_fashion_mnist_is_found",  # reads, no training
)
# Not slow either, so not named: a bare `python -c` import check, and uvicorn run in a thread of
# the test process (tests/api/test_predictions.py).

# `make test` runs the tests in pytest-xdist workers (`--dist loadgroup`). Tests that share a stack
# go to one worker, so that it starts once per run rather than once per worker: by the fixture that
# starts it, session-scoped (all its tests) or module-scoped (its module's tests). xdist hands out
# the largest groups first; here the slow tests come before the rest, so that no long test is left
# to run alone at the end.
SESSION_STACKS = ("lab", "ui_lab")
MODULE_STACKS = ("embedded_stack", "scaleout_stack", "gpu_stack")


def pytest_configure(config: pytest.Config) -> None:
    """Torch's threads in the test processes (and the processes they start), set before any
    test module imports torch: idle ones sleep rather than spin, and the xdist workers share the
    cores, one share each. Spinning threads of two workers on two cores doubled the CPU time of
    the training tests."""
    yield_idle_threads()
    if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))


def _named(item: pytest.Item, entries: tuple[str, ...]) -> bool:
    path, _, _ = item.nodeid.partition("::")
    name = getattr(item, "originalname", item.name)
    return any(entry in (path, f"{path}::{name}") for entry in entries)


def _check_named(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A renamed or moved test must not lose its marker unnoticed."""
    modules = {item.nodeid.partition("::")[0]: getattr(item, "module", None) for item in items}
    for entry in SLOW_TESTS + NOT_SLOW:
        path, _, name = entry.partition("::")
        gone = not (config.rootpath / path).is_file()
        if name and not gone and path in modules:
            gone = not hasattr(modules[path], name)
        if gone:
            raise pytest.UsageError(f"tests/conftest.py names {entry}, which does not exist")


# The longest files of the tests that are not slow (`--durations`): exports, every route's
# auth, the schema property test, live streams, evaluations, webhook deadlines, searches, uploads.
LONG_FILES = (
    "tests/api/test_registry.py",
    "tests/security/test_openapi_properties.py",
    "tests/api/test_auth.py",
    "tests/api/test_stream_tokens.py",
    "tests/api/test_evaluations.py",
    "tests/core/test_webhook_delivery.py",
    "tests/api/test_searches.py",
    "tests/lifecycle/test_searches.py",
    "tests/core/test_export.py",
    "tests/api/test_datasets.py",
    "tests/core/test_doctor.py",
    "tests/api/test_jobs.py",
)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_named(config, items)
    for item in items:
        slow = (
            item.nodeid.startswith(SLOW_FOLDERS)
            or not SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
            or _named(item, SLOW_TESTS)
        )
        if slow and not _named(item, NOT_SLOW):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _group_for_xdist(items)


def _group_for_xdist(items: list[pytest.Item]) -> None:
    def group(item: pytest.Item) -> str | None:
        fixtures = getattr(item, "fixturenames", ())
        if stack := next((name for name in SESSION_STACKS if name in fixtures), None):
            return stack
        if any(name in fixtures for name in MODULE_STACKS):
            return item.nodeid.partition("::")[0]
        return None

    for item in items:
        if name := group(item):
            item.add_marker(pytest.mark.xdist_group(name))
    # Slow tests first, then the longest files of the rest, so that no worker is left with a long
    # file at the end while the other waits (stable: the order is otherwise collection's).
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            not item.nodeid.startswith(LONG_FILES),
        )
    )


@pytest.fixture(autouse=True)
def cnnlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "cnnlab-home"
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CNNLAB_DOWNLOAD", raising=False)
    monkeypatch.delenv("CNNLAB_DATABASE_URL", raising=False)
    monkeypatch.delenv("CNNLAB_BROKER_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This test process's migrated throwaway PostgreSQL database, dropped at the end."""
    from tests.utils.postgres import throwaway_database

    with throwaway_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def pg_url(pg_database: str) -> str:
    """A migrated PostgreSQL database with no rows, shared by one test module."""
    empty_postgres(pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, cnnlab_home: Path) -> Iterator[str]:
    """A migrated database: a fresh SQLite file, or the module's PostgreSQL database."""
    if request.param == "sqlite":
        url = upgraded(f"sqlite:///{cnnlab_home / 'store.db'}")
    else:
        url = request.getfixturevalue("pg_url")
    yield url
    dispose_engine(close=True)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session whose work the test commits itself (as the API and the worker do)."""
    with get_sessionmaker(db_url)() as s:
        yield s


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def real_fashion_mnist() -> Path:
    if not (FASHION_MNIST_DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Debian's dataset-fashion-mnist is not installed (apt-get install it)")
    return FASHION_MNIST_DEBIAN
