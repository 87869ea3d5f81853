"""``cnnlab doctor``: checks what this machine's cnnlab needs and says how to fix what is wrong.

One line per check: the datasets, the database (reachable, migrated), the broker (reachable),
the GPUs torch sees and the free disk under ``CNNLAB_HOME``. Each line starts with ``ok``,
``warn`` (works, but not everything will) or ``problem`` (followed by how to fix it); the exit
status is 1 when any check found a problem. Reads the same settings as the service.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cnnlab.settings import EMBEDDED_BROKER, Settings, get_settings

GIB = 2**30
# Free disk under CNNLAB_HOME: below the first a problem (checkpoints and the dataset cache
# stop fitting), below the second a warning.
DISK_PROBLEM_BYTES = 1 * GIB
DISK_WARN_BYTES = 5 * GIB
CONNECT_TIMEOUT_S = 3.0


class State(StrEnum):
    ok = "ok"
    warn = "warn"
    problem = "problem"


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.state.value:<8}{self.name}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text


# -- the checks ----------------------------------------------------------------------------------


def check_data(settings: Settings) -> list[Check]:
    """Each dataset available (with its sizes), missing (where it was looked for), or damaged."""
    from cnnlab.datasets.catalog import DATASETS
    from cnnlab.datasets.sizes import describe

    checks: list[Check] = []
    for name in DATASETS:
        try:
            info = describe(name, settings)
        except Exception as exc:  # a dataset reader failing is this check's finding, not a crash
            checks.append(
                Check(f"data {name}", State.problem, f"cannot be read: {exc}", "replace its files")
            )
            continue
        if info.available:
            sizes = f"{info.train_size} training and {info.test_size} test images"
            checks.append(Check(f"data {name}", State.ok, sizes))
        elif info.reason:
            checks.append(
                Check(
                    f"data {name}",
                    State.problem,
                    f"damaged ({info.reason}) in {', '.join(info.tried)}",
                    "replace its files (delete them and set CNNLAB_DOWNLOAD=1 to fetch it again)",
                )
            )
        elif settings.download:
            checks.append(Check(f"data {name}", State.ok, "not on disk; downloaded on first use"))
        else:
            fix = f"put its files under {settings.resolved_data_dir} or set CNNLAB_DOWNLOAD=1"
            if DATASETS[name].debian_dir:
                fix += " (or `apt-get install dataset-fashion-mnist`)"
            checks.append(
                Check(
                    f"data {name}",
                    State.warn,
                    f"not found (looked in {', '.join(info.tried)}): jobs on it are refused",
                    fix,
                )
            )
    if not any(c.state is State.ok for c in checks):
        checks.append(
            Check(
                "data",
                State.problem,
                "no dataset is available: every job would be refused",
                "see the dataset lines above",
            )
        )
    return checks


def check_database(settings: Settings) -> Check:
    """Reachable, and at the newest migration this cnnlab has."""
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from cnnlab.store import migrate

    url = settings.resolved_database_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and not Path(database).exists():
        return Check(
            "database",
            State.warn,
            f"no database yet at {database}",
            "`cnnlab db upgrade` creates it (`cnnlab serve` and `cnnlab api` do it on start)",
        )
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # libpq waits for ever on a host that drops packets: give up like the other checks do.
        parsed = parsed.update_query_dict({"connect_timeout": str(int(CONNECT_TIMEOUT_S))})
        url = parsed.render_as_string(hide_password=False)
    try:
        # One try: a refused connection is the answer at once (waiting is for a server that is
        # starting, which `cnnlab db upgrade` does); connect_timeout bounds a silent host.
        migrate.wait_for_database(url, timeout=0)
        current = migrate.current(url)
    except Exception as exc:
        return Check(
            "database",
            State.problem,
            f"cannot connect to {shown}: {_reason(exc)}",
            "start the database server, or correct CNNLAB_DATABASE_URL",
        )
    heads = ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads()
    if current in heads:
        return Check("database", State.ok, f"{shown}, at migration {current} (the newest)")
    if current is None:
        return Check(
            "database", State.problem, f"{shown} has no tables yet", "run `cnnlab db upgrade`"
        )
    known = ScriptDirectory.from_config(migrate.alembic_config(url)).get_revision
    try:
        known(current)
    except Exception:
        return Check(
            "database",
            State.problem,
            f"{shown} is at migration {current}, which this cnnlab does not know",
            "install the cnnlab version that wrote it (the database is newer than this code)",
        )
    return Check(
        "database",
        State.problem,
        f"{shown} is at migration {current}, not the newest ({', '.join(heads)})",
        "run `cnnlab db upgrade`",
    )


def check_broker(settings: Settings) -> Check:
    """The message broker answers (the embedded one needs no server: its file's folder is
    checked instead)."""
    if settings.broker_url == EMBEDDED_BROKER:
        home = settings.home
        if _writable(home):
            return Check(
                "broker",
                State.ok,
                f"embedded (a file under {home}; no server; workers on this machine only)",
            )
        return Check(
            "broker",
            State.problem,
            f"embedded, but {home} is not writable",
            "make CNNLAB_HOME a writable folder",
        )
    from kombu import Connection

    url = settings.broker_url
    try:
        with Connection(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:
        return Check(
            "broker",
            State.problem,
            f"cannot connect to {_hide_password(url)}: {_reason(exc)}",
            "start the broker (e.g. redis-server), or correct CNNLAB_BROKER_URL",
        )
    return Check("broker", State.ok, f"{_hide_password(url)} answers")


def check_gpus() -> Check:
    """The GPUs torch sees here (none is fine: jobs with ``device: cuda`` need a GPU worker)."""
    try:
        import torch
    except Exception as exc:
        return Check(
            "gpus", State.problem, f"torch does not load: {_reason(exc)}", "reinstall cnnlab"
        )
    if not torch.cuda.is_available():
        return Check(
            "gpus",
            State.ok,
            'none here: CPU training only; jobs with "device": "cuda" need a GPU worker '
            "(`cnnlab worker --queues gpu` on a machine with one)",
        )
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return Check("gpus", State.ok, f"{len(names)}: {', '.join(names)} (CUDA {torch.version.cuda})")


def check_disk(settings: Settings) -> Check:
    """Free space where cnnlab writes: the SQLite database, the broker, the dataset cache."""
    home = settings.home
    where = _existing(home)
    free = shutil.disk_usage(where).free
    text = f"{free / GIB:.1f} GiB free under {home}"
    if free < DISK_PROBLEM_BYTES:
        return Check("disk", State.problem, text, "free some space or move CNNLAB_HOME")
    if free < DISK_WARN_BYTES:
        return Check("disk", State.warn, text, "checkpoints and dataset caches may not fit")
    return Check("disk", State.ok, text)


def run_checks(settings: Settings | None = None) -> list[Check]:
    settings = settings or get_settings()
    steps: list[Callable[[], Check | list[Check]]] = [
        lambda: check_data(settings),
        lambda: check_database(settings),
        lambda: check_broker(settings),
        check_gpus,
        lambda: check_disk(settings),
    ]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


# -- helpers -------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(path: Path) -> bool:
    target = _existing(path)
    return os.access(target, os.W_OK)


# -- the command ---------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check data, database, broker, GPUs and disk; say how to fix what is wrong",
        description="Check what cnnlab needs on this machine (with the CNNLAB_* settings): "
        "the datasets, the database, the broker, the GPUs and free disk. One line per check; "
        "exit status 1 if any is a problem.",
    )
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    for check in checks:
        print(check.line())
    problems = sum(c.state is State.problem for c in checks)
    print(f"{problems} problem(s)" if problems else "all good")
    return 1 if problems else 0
