"""The deployment files: Compose accepts docker-compose.yml, it has the services, health checks
and GPU reservation the deployment needs, and every container command is a valid cnnlab command.
(No Docker engine runs here: nothing is built or started.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnnlab.cli import build_parser
from cnnlab.testing.procs import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"


def _compose() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


def _config(
    compose_file: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_compose(), "--file", str(compose_file), "--profile", "gpu", "config"],
        cwd=compose_file.parent,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "POSTGRES_PASSWORD": "s3cret", **(env or {})},
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    out = _config(COMPOSE_FILE)
    assert out.returncode == 0, out.stderr
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    return config


def test_compose_rejects_an_invalid_file(tmp_path: Path) -> None:
    # The check above can fail: the same file with one service key misspelt is refused.
    broken = COMPOSE_FILE.read_text().replace("    healthcheck:", "    healthchek:", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    assert _config(tmp_path / "docker-compose.yml").returncode != 0


def test_compose_has_every_service_with_a_health_check(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == {"api", "worker-cpu", "worker-gpu", "postgres", "redis"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("api", "worker-cpu", "worker-gpu"):
        env = services[name]["environment"]
        assert env["CNNLAB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["CNNLAB_BROKER_URL"].startswith("redis://redis:")
    assert services["worker-cpu"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert {"pgdata", "redisdata", "datasets"} <= set(resolved["volumes"])


def test_the_gpu_worker_reserves_gpus(resolved: dict[str, Any]) -> None:
    gpu = resolved["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    assert gpu["command"][gpu["command"].index("--queues") + 1] == "gpu"


def test_container_commands_are_cnnlab_commands(resolved: dict[str, Any]) -> None:
    parser = build_parser()
    commands = [resolved["services"][s]["command"] for s in ("api", "worker-cpu", "worker-gpu")]
    dockerfile = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd and 'ENTRYPOINT ["cnnlab"]' in dockerfile
    commands.append(yaml.safe_load(cmd.group(1)))
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.func.__module__ == "worker.commands", argv


def test_compose_needs_a_postgres_password(tmp_path: Path) -> None:
    out = subprocess.run(
        [*_compose(), "--file", str(COMPOSE_FILE), "config"],
        cwd=tmp_path,  # no .env file here to supply one
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert out.returncode != 0 and "set POSTGRES_PASSWORD" in out.stderr
    given = yaml.safe_load(_config(COMPOSE_FILE).stdout)["services"]
    assert given["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert ":s3cret@postgres:" in given["api"]["environment"]["CNNLAB_DATABASE_URL"]


def _api_ports(config: dict[str, Any]) -> list[Any]:
    return list(config["services"]["api"]["ports"])


def test_the_api_listens_on_localhost_unless_told_otherwise(resolved: dict[str, Any]) -> None:
    def host_ips(ports: list[Any]) -> set[str]:
        # docker-compose 1.x prints "IP:HOST:CONTAINER/tcp"; Compose v2 a mapping with host_ip.
        return {p["host_ip"] if isinstance(p, dict) else str(p).rsplit(":", 2)[0] for p in ports}

    assert host_ips(_api_ports(resolved)) == {"127.0.0.1"}
    exposed = _config(COMPOSE_FILE, {"CNNLAB_BIND": "0.0.0.0"})
    assert exposed.returncode == 0, exposed.stderr
    assert host_ips(_api_ports(yaml.safe_load(exposed.stdout))) == {"0.0.0.0"}


def test_requests_do_not_download_datasets_by_default(resolved: dict[str, Any]) -> None:
    for name in ("api", "worker-cpu", "worker-gpu"):
        assert resolved["services"][name]["environment"]["CNNLAB_DOWNLOAD"] == "0"
