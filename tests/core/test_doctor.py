"""``cnnlab doctor``, in process: each check's finding and the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.cli import doctor, main
from cnnlab.cli.doctor import State
from cnnlab.settings import Settings
from cnnlab.store import migrate
from tests.utils.datasets import write_mnist


def _settings(home: Path, data: Path, **kw: object) -> Settings:
    missing = home / "no-debian-data"
    return Settings(home=home, data_dir=data, debian_fashion_mnist=missing, **kw)  # type: ignore[arg-type]


def test_a_healthy_machine(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    write_mnist(data, n_train=60, n_test=20)
    settings = _settings(home, data)
    migrate.upgrade(settings.resolved_database_url)
    checks = {c.name: c for c in doctor.run_checks(settings)}
    assert checks["data mnist"].state is State.ok
    assert "60 training and 20 test images" in checks["data mnist"].message
    # Missing datasets are warnings (jobs on them are refused), with how to get them.
    cifar = checks["data cifar10"]
    assert cifar.state is State.warn and "CNNLAB_DOWNLOAD=1" in cifar.fix
    assert "dataset-fashion-mnist" in checks["data fashion_mnist"].fix
    assert checks["database"].state is State.ok and "newest" in checks["database"].message
    assert checks["broker"].state is State.ok and "embedded" in checks["broker"].message
    assert checks["gpus"].state is State.ok
    assert checks["disk"].state is State.ok and "GiB free" in checks["disk"].message
    assert not [c for c in checks.values() if c.state is State.problem]


def test_problems_say_how_to_fix_them(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    settings = _settings(
        home,
        data,
        broker_url="redis://127.0.0.1:1/0",
        database_url="postgresql://cnnlab:secret@127.0.0.1:1/cnnlab",
    )
    checks = {c.name: c for c in doctor.run_checks(settings)}
    assert checks["data"].state is State.problem  # no dataset at all
    database, broker = checks["database"], checks["broker"]
    assert database.state is State.problem and "CNNLAB_DATABASE_URL" in database.fix
    assert "secret" not in database.line()
    assert broker.state is State.problem and "CNNLAB_BROKER_URL" in broker.fix
    assert database.line().startswith("problem ") and "; fix: " in database.line()


def test_an_unmigrated_database(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", tmp_path / "data")
    check = doctor.check_database(settings)
    assert check.state is State.warn and "cnnlab db upgrade" in check.fix  # no file yet
    migrate.upgrade(settings.resolved_database_url, "0001")
    check = doctor.check_database(settings)
    assert check.state is State.problem and check.fix == "run `cnnlab db upgrade`"


def test_low_disk_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10, 10, 100 * 2**20))
    check = doctor.check_disk(_settings(tmp_path / "home", tmp_path / "data"))
    assert check.state is State.problem and "0.1 GiB free" in check.message


def test_the_command_prints_a_line_per_check_and_exits_1_on_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings come from the environment (tests/conftest.py points CNNLAB_HOME at tmp).
    monkeypatch.setenv("CNNLAB_DEBIAN_FASHION_MNIST", str(tmp_path / "none"))
    assert main(["doctor"]) == 1  # no dataset at all
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("problem data:") for line in out)
    assert any(line.startswith("ok      broker:") for line in out)
    assert out[-1].endswith("problem(s)")
    write_mnist(tmp_path / "data", n_train=60, n_test=20)  # CNNLAB_DATA_DIR
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all good"
